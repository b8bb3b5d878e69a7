import { randomBytes } from "node:crypto";
import { z } from "zod";
import { developmentSecret } from "@bazaar/platform/env";
import { oauthClientIdPattern, oauthClientIdRule } from "@bazaar/platform/validation";
import { hashPassword, verifyPassword } from "./passwords.ts";

/** The OAuth clients identity knows: client id → argon2id hash (PHC string) of its secret. */
export type OAuthClientHashes = ReadonlyMap<string, string>;

// An argon2id PHC string: $argon2id$v=19$m=…,t=…,p=…$salt$hash (base64 without padding).
const argon2idPhc = /^\$argon2id\$v=19\$m=\d+,t=\d+,p=\d+\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$/;

/**
 * The development clients: orders and the BFF, with the hashes of their development secrets
 * (`developmentClientSecret` in platform/src/env.ts, which the callers default to). Public,
 * so refused outside development; a test checks the hashes match the secrets.
 */
export const developmentOAuthClients = [
  "orders:$argon2id$v=19$m=19456,t=2,p=1$/RHGfzcHRYK78/HZas9PH5j3Az28MomsComaAsNuiiY$JJNTWeU+ZNQ7QbnU6oigl17LfdRFdi5Cu5X6+m7Lk8E",
  "bff:$argon2id$v=19$m=19456,t=2,p=1$pc9OascPdlqe1nX31pr+hKoU5aMH7laq21LmKBEIlX0$Rx4r2knMiCAwFhL9kjQaOuibjJArXQmqIFOVmlW/ziQ",
].join(" ");

/**
 * OAUTH_CLIENTS: the clients, as `<client id>:<argon2id hash>` entries separated by spaces or
 * newlines (PHC strings contain commas and `=`, never a space or a colon), e.g.
 * `orders:$argon2id$v=19$m=19456,t=2,p=1$… bff:$argon2id$…`. `bun run oauth:client <id>`
 * mints a secret and prints its entry.
 */
export const oauthClientsVar = developmentSecret(
  z.string().transform((list, ctx) => {
    const clients = new Map<string, string>();
    for (const [i, entry] of list.split(/\s+/).filter(Boolean).entries()) {
      const colon = entry.indexOf(":");
      const [id, hash] = colon < 0 ? [entry, ""] : [entry.slice(0, colon), entry.slice(colon + 1)];
      const at = `entry ${i + 1} (${JSON.stringify(id.slice(0, 32))})`;
      if (!oauthClientIdPattern.test(id)) ctx.addIssue({ code: "custom", message: `${at}: the part before ":" ${oauthClientIdRule}` });
      else if (!argon2idPhc.test(hash))
        ctx.addIssue({
          code: "custom",
          message: `${at}: after "${id}:" must come an argon2id hash ($argon2id$v=19$m=…), as \`bun run oauth:client ${id}\` prints`,
        });
      else if (clients.has(id)) ctx.addIssue({ code: "custom", message: `${at}: client ${id} is listed twice` });
      else clients.set(id, hash);
    }
    if (clients.size === 0 && ctx.issues.length === 0)
      ctx.addIssue({ code: "custom", message: "must list at least one client as <client id>:<argon2id hash>" });
    return clients as OAuthClientHashes;
  }),
  developmentOAuthClients,
  "mint each calling service's client with `bun run oauth:client <client id>` and list the entries it prints, separated by spaces",
);

/**
 * True if `secret` is the secret of client `clientId`. An unknown client costs the same
 * argon2id verification as a known one (on a dummy hash), so timing does not tell which
 * client ids exist.
 */
export function clientSecretMatches(clients: OAuthClientHashes, clientId: string, secret: string): Promise<boolean> {
  return verifyPassword(secret, clients.get(clientId));
}

/** A new client: a random secret (32 bytes, base64url: 43 characters) and its hash. */
export async function mintClient(clientId: string): Promise<{ clientId: string; secret: string; entry: string }> {
  if (!oauthClientIdPattern.test(clientId)) throw new Error(`"${clientId}" ${oauthClientIdRule}`);
  const secret = randomBytes(32).toString("base64url");
  return { clientId, secret, entry: `${clientId}:${await hashPassword(secret)}` };
}
