import { desc, eq, sql } from "drizzle-orm";
import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, type JSONWebKeySet, type JWK } from "jose";
import { jwtSettings } from "@bazaar/platform/auth";
import type { Database } from "@bazaar/platform/db";
import { log } from "@bazaar/platform/log";
import type * as schema from "./db/schema.ts";
import { signingKeys } from "./db/schema.ts";

/** The identity service's database. */
export type IdentityDatabase = Database<typeof schema>;

/** The key tokens are signed with. */
export interface SigningKey {
  kid: string;
  privateKey: CryptoKey;
}

/** The keys identity signs with and publishes. */
export interface KeyRing {
  /** The newest active key: every new token is signed with it. */
  signing: SigningKey;
  /** The JWKS document: the public half of every active key, with kid, alg and use. */
  jwks: JSONWebKeySet;
}

/** The public JWK as published: key material plus kid, alg and use, nothing else. */
function publicJwk(jwk: JWK, kid: string): JWK {
  return { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y, kid, alg: jwtSettings.algorithm, use: "sig" };
}

/**
 * Loads the signing keys, generating the first one if there is none. Runs under an advisory
 * lock in one transaction, so replicas starting together end up with the same single key
 * instead of one each.
 *
 * The private key sits in the service's own database as a JWK. A deployment that needs more
 * would keep it in a KMS or encrypt the column with a key from one.
 */
export async function loadKeyRing(database: IdentityDatabase): Promise<KeyRing> {
  const rows = await database.db.transaction(async (tx) => {
    await tx.execute(sql`select pg_advisory_xact_lock(hashtext(${"bazaar:identity:signing-key"}))`);
    const active = await tx.select().from(signingKeys).where(eq(signingKeys.active, true)).orderBy(desc(signingKeys.createdAt));
    if (active.length > 0) return active;
    const { privateKey, publicKey } = await generateKeyPair(jwtSettings.algorithm, { extractable: true });
    const pub = await exportJWK(publicKey);
    const kid = await calculateJwkThumbprint(pub);
    const [created] = await tx
      .insert(signingKeys)
      .values({ kid, privateJwk: { ...(await exportJWK(privateKey)), kid, alg: jwtSettings.algorithm }, publicJwk: publicJwk(pub, kid) })
      .returning();
    log.info("generated a signing key", { kid });
    return created ? [created] : [];
  });
  const newest = rows[0];
  if (!newest) throw new Error("no signing key after generating one");
  const privateKey = await importJWK(newest.privateJwk, jwtSettings.algorithm);
  if (!(privateKey instanceof CryptoKey)) throw new Error(`signing key ${newest.kid} is not an EC private key`);
  return {
    signing: { kid: newest.kid, privateKey },
    jwks: { keys: rows.map((r) => publicJwk(r.publicJwk, r.kid)) },
  };
}

/**
 * The key set as a `data:` URL. Identity verifies bearer tokens with the platform's
 * {@link AccessTokenVerifier}, which takes a JWKS URL; handing it this URL makes it check
 * tokens against identity's own keys in process (jose fetches it with `fetch`, which reads
 * `data:` URLs), with every check of the verifier (algorithm, issuer, audience, expiry) and
 * no HTTP round trip to itself or dependence on JWKS_URL pointing at the right port.
 */
export function inlineJwksUrl(jwks: JSONWebKeySet): string {
  return `data:application/json;base64,${Buffer.from(JSON.stringify(jwks)).toString("base64")}`;
}
