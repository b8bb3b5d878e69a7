/**
 * The verifier's verified tokens: a token presented again is not checked again while it is
 * valid — but never past its expiry, never longer than the key set is cached, and never after
 * the in-process key set changed (revoked keys must stop working).
 */
import { afterAll, expect, test } from "bun:test";
import { exportJWK, generateKeyPair, type JSONWebKeySet, SignJWT } from "jose";
import { AccessTokenVerifier, jwtSettings } from "@bazaar/platform/auth";
import { startTestIssuer, type TestIssuer } from "@bazaar/testkit/test-issuer";

const issuer = "https://identity.bazaar.local";
const audience = "bazaar";
const issuers: TestIssuer[] = [];
afterAll(() => {
  for (const i of issuers) i.stop();
});

async function keyPair(kid: string) {
  const { privateKey, publicKey } = await generateKeyPair(jwtSettings.algorithm, { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid, alg: jwtSettings.algorithm, use: "sig" };
  const sign = (expiresInSeconds: number) =>
    new SignJWT({ sub: crypto.randomUUID(), roles: ["customer"] })
      .setProtectedHeader({ alg: jwtSettings.algorithm, kid, typ: "JWT" })
      .setIssuer(issuer)
      .setAudience(audience)
      .setIssuedAt()
      .setExpirationTime(Math.floor(Date.now() / 1000) + expiresInSeconds)
      .sign(privateKey);
  return { jwk, sign };
}

/** The principal the verifier answers, or the error's message. */
const outcome = (verifier: AccessTokenVerifier, token: string) => verifier.verify(token).catch((err: Error) => err.message);

test("a token presented again is answered from the verified tokens (the same principal), until the in-process key set changes; a key taken out stops its tokens at once", async () => {
  const a = await keyPair("a");
  const b = await keyPair("b");
  let keys: JSONWebKeySet = { keys: [a.jwk, b.jwk] };
  const verifier = new AccessTokenVerifier({ issuer, audience, jwks: () => keys });
  const token = await a.sign(300);
  const first = await verifier.verify(token);
  expect(await verifier.verify(token)).toBe(first);
  expect(Object.isFrozen(first) && Object.isFrozen(first.roles)).toBe(true);
  // The same keys in a new set: the token is checked again (a new principal, the same subject).
  keys = { keys: [a.jwk, b.jwk] };
  const again = await verifier.verify(token);
  expect(again).not.toBe(first);
  expect(again.subject).toBe(first.subject);
  // Key a revoked: its token is refused on the next call, however recently it verified.
  keys = { keys: [b.jwk] };
  expect(await outcome(verifier, token)).toContain("signed with a key the issuer does not publish");
});

test("a verified token is not trusted past its expiry: the next call checks it again", async () => {
  const a = await keyPair("a");
  const verifier = new AccessTokenVerifier({
    issuer,
    audience,
    jwks: (() => {
      const set = { keys: [a.jwk] };
      return () => set;
    })(),
  });
  const token = await a.sign(1);
  const first = await verifier.verify(token);
  expect(await verifier.verify(token)).toBe(first);
  await Bun.sleep(Math.max(0, JSON.parse(Buffer.from(token.split(".")[1]!, "base64url").toString()).exp * 1000 - Date.now()) + 50);
  // Checked again: within the clock tolerance it verifies anew (a new principal), past it it is refused.
  expect(await outcome(verifier, token)).not.toBe(first);
});

test("with a remote key set cached for 1 s, a verified token is trusted for 1 s at most", async () => {
  const testIssuer = await startTestIssuer();
  issuers.push(testIssuer);
  const verifier = new AccessTokenVerifier({ issuer: testIssuer.issuer, audience: testIssuer.audience, jwksUrl: testIssuer.jwksUrl, jwksCacheSeconds: 1 });
  const token = await testIssuer.token({ sub: crypto.randomUUID() });
  const first = await verifier.verify(token);
  expect(await verifier.verify(token)).toBe(first);
  await Bun.sleep(1_100);
  const later = await verifier.verify(token);
  expect(later).not.toBe(first);
  expect(later.subject).toBe(first.subject);
});
