import { exportJWK, generateKeyPair, type JWK, type JWTPayload, SignJWT } from "jose";
import { jwtSettings } from "@bazaar/platform/auth";

/**
 * A token issuer for tests: its own ES256 key pair, its JWKS served on a free local port,
 * and tokens made to order — good ones for any user and roles, and the bad kinds a verifier
 * must refuse (expired, wrong issuer or audience, signed by another key, `alg: none`).
 */
export interface TestIssuer {
  jwksUrl: string;
  issuer: string;
  audience: string;
  /** A valid access token. */
  token(claims: { sub: string; roles?: string[] } & JWTPayload, options?: { expiresInSeconds?: number }): Promise<string>;
  /** A token signed by a key the JWKS does not publish. */
  foreignToken(claims: { sub: string; roles?: string[] }): Promise<string>;
  /** An unsigned token (`alg: none`). */
  unsignedToken(claims: { sub: string; roles?: string[] }): string;
  stop(): void;
}

/** Starts a test issuer. */
export async function startTestIssuer(options: { issuer?: string; audience?: string } = {}): Promise<TestIssuer> {
  const issuer = options.issuer ?? "https://identity.bazaar.local";
  const audience = options.audience ?? "bazaar";
  const kid = `test-${crypto.randomUUID()}`;
  const { privateKey, publicKey } = await generateKeyPair(jwtSettings.algorithm, { extractable: true });
  const foreign = await generateKeyPair(jwtSettings.algorithm);
  const publicJwk: JWK = { ...(await exportJWK(publicKey)), kid, alg: jwtSettings.algorithm, use: "sig" };
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch: () => Response.json({ keys: [publicJwk] }),
  });
  const sign = (claims: JWTPayload, key: CryptoKey, expiresInSeconds = 300) =>
    new SignJWT(claims)
      .setProtectedHeader({ alg: jwtSettings.algorithm, kid, typ: "JWT" })
      .setIssuer(typeof claims.iss === "string" ? claims.iss : issuer)
      .setAudience(claims.aud ?? audience)
      .setIssuedAt(Math.floor(Date.now() / 1000) - (expiresInSeconds < 0 ? 600 : 0))
      .setExpirationTime(Math.floor(Date.now() / 1000) + expiresInSeconds)
      .sign(key);
  const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString("base64url");
  return {
    jwksUrl: `http://127.0.0.1:${server.port}/.well-known/jwks.json`,
    issuer,
    audience,
    token: (claims, o) => sign({ roles: ["customer"], ...claims }, privateKey, o?.expiresInSeconds),
    foreignToken: (claims) => sign({ roles: ["customer"], ...claims }, foreign.privateKey),
    unsignedToken: (claims) => {
      const now = Math.floor(Date.now() / 1000);
      return `${b64({ alg: "none", typ: "JWT" })}.${b64({ roles: ["customer"], ...claims, iss: issuer, aud: audience, iat: now, exp: now + 300 })}.`;
    },
    stop: () => server.stop(true),
  };
}
