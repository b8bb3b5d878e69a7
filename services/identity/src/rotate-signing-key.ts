/**
 * The operator's command to rotate identity's signing key now, e.g. after a suspected leak;
 * see `--help`. It reads identity's own environment (DATABASE_URL, SIGNING_KEY_*, token
 * lifetimes): run it where identity runs, e.g. `docker compose exec identity bun
 * services/identity/src/rotate-signing-key.ts`.
 */
import { parseArgs } from "node:util";
import { openDatabase } from "@bazaar/platform/db";
import { configureLogging } from "@bazaar/platform/log";
import * as schema from "./db/schema.ts";
import { env, signingKeySettings } from "./env.ts";
import { maintainSigningKeys } from "./signing-keys.ts";

const help = `Usage: bun services/identity/src/rotate-signing-key.ts [--revoke]

Rotates identity's signing key now, instead of waiting for SIGNING_KEY_ROTATION_SECONDS.

Without --revoke: a new key is published at once and starts signing SIGNING_KEY_LEAD_SECONDS
later, when every verifier has it; the current key signs until then and stays published until
the last token it signed has expired. No request fails. A successor already scheduled but not
yet signing is replaced.

--revoke: for a leaked key. Every key is removed from the JWKS at once and a new key signs
straight away. Tokens signed with the old keys are REFUSED: signed-in users must refresh
(refresh tokens stay valid) and services fetch new tokens. Until they reload (within
SIGNING_KEY_RELOAD_MS) identity's replicas still sign with the old key; until their copy of the
JWKS expires (JWKS_CACHE_SECONDS) verifiers may still accept old tokens, and the gateway may
refuse new ones (the services' verifiers refetch the JWKS on an unknown key; Envoy does not).

Running identity replicas pick the change up within SIGNING_KEY_RELOAD_MS.`;

const options = { revoke: { type: "boolean", default: false }, help: { type: "boolean", short: "h", default: false } } as const;
let values: { revoke: boolean; help: boolean };
try {
  ({ values } = parseArgs({ options }));
} catch (err) {
  console.error(`${(err as Error).message}\n\n${help}`);
  process.exit(2);
}
if (values.help) {
  console.log(help);
  process.exit(0);
}

configureLogging("identity", env.LOG_LEVEL);
const database = await openDatabase({ url: env.DATABASE_URL, schema, migrationsFolder: new URL("../drizzle", import.meta.url).pathname });
try {
  const { keys } = await maintainSigningKeys(database, signingKeySettings, values.revoke ? { revoke: true } : { rotateNow: true });
  for (const k of keys.sort((a, b) => a.signsFrom.getTime() - b.signsFrom.getTime())) {
    const until = k.signsUntil ? `signs until ${k.signsUntil.toISOString()}, published until ${k.publishedUntil?.toISOString()}` : "signs until its successor";
    console.log(`key ${k.kid}: signs from ${k.signsFrom.toISOString()}, ${until}`);
  }
} finally {
  await database.close();
}
