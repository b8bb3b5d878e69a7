import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { status } from "@grpc/grpc-js";
import { eq } from "drizzle-orm";
import { Hono } from "hono";
import { decodeProtectedHeader } from "jose";
import { AccessTokenVerifier } from "@bazaar/platform/auth";
import { connectRedis, type RedisConnection } from "@bazaar/platform/cache";
import type { RpcError } from "@bazaar/platform/errors";
import type { GrpcClient } from "@bazaar/platform/grpc/client";
import { configureLogging } from "@bazaar/platform/log";
import { startTestIssuer } from "@bazaar/testkit/test-issuer";
import { bearer, registerAndLogin, rpcError, startTestGrpcServer, type TestGrpcServer, testEnv, uniqueName } from "@bazaar/testkit/fixtures";
import { TestScope } from "@bazaar/testkit/test-scope";
import { eventually } from "@bazaar/testkit/eventually";
import { UserRegisteredSchema } from "@bazaar/proto/bazaar/events/v1/events_pb";
import { IdentityService, RegisterResponseSchema } from "@bazaar/proto/bazaar/identity/v1/identity_pb";
import { AccessTokenIssuer } from "../src/access-tokens.ts";
import { Accounts } from "../src/accounts.ts";
import * as schema from "../src/db/schema.ts";
import { LoginThrottle } from "../src/login-throttle.ts";
import { identityAccess, identityHandlers } from "../src/rpc.ts";
import { seedAdmin } from "../src/seed.ts";
import { type IdentityDatabase, type SigningKeySettings, SigningKeys } from "../src/signing-keys.ts";
import { addWellKnownRoutes } from "../src/well-known.ts";

// Identity's handlers behind a real gRPC server and client, wired as main.ts wires them
// (tokens verified against its own keys in process), on a fresh database and Redis prefix;
// the JWKS is served over HTTP by the same routes the service mounts.
const scope = new TestScope();
const redisPrefix = scope.redisPrefix();
const issuer = "https://identity.bazaar.local";
const audience = "bazaar";
const accessTtl = 900;
const keySettings: SigningKeySettings = { rotationSeconds: 30 * 86_400, leadSeconds: 3600, longestTokenTtlSeconds: accessTtl, reloadMs: 60_000 };
let db: IdentityDatabase;
let redis: RedisConnection;
let accounts: Accounts;
let tokenIssuer: AccessTokenIssuer;
let grpc: TestGrpcServer<typeof IdentityService>;
let client: GrpcClient<typeof IdentityService>;
let http: ReturnType<typeof Bun.serve>;
let verifier: AccessTokenVerifier;

beforeAll(async () => {
  configureLogging("identity", "error");
  db = await scope.database("identity", schema);
  const keys = await SigningKeys.open(db, keySettings);
  redis = scope.add(await connectRedis(testEnv.REDIS_URL, redisPrefix), (r) => r.close());
  tokenIssuer = new AccessTokenIssuer(keys, { issuer, audience });
  accounts = new Accounts(db, tokenIssuer, new LoginThrottle(redis), { accessTokenTtlSeconds: accessTtl, refreshTokenTtlSeconds: 30 * 86_400 });
  const app = new Hono();
  addWellKnownRoutes(app, { issuer, jwks: () => keys.jwks(), cacheSeconds: 300 });
  http = scope.add(Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: app.fetch }), (h) => h.stop(true));
  verifier = new AccessTokenVerifier({ jwksUrl: `http://127.0.0.1:${http.port}/.well-known/jwks.json`, issuer, audience });
  const selfVerifier = new AccessTokenVerifier({ jwks: () => keys.jwks(), issuer, audience });
  grpc = scope.add(
    await startTestGrpcServer({ service: IdentityService, impl: identityHandlers(accounts), access: identityAccess, verifier: selfVerifier }),
    (g) => g.stop(),
  );
  client = grpc.client;
}, 60_000);

afterAll(() => scope.cleanup(), 60_000);

const password = "correct horse battery";
// A service's token, as the token endpoint issues it (token-endpoint.test.ts tests the endpoint).
const serviceTokenOf = async (clientId: string) => (await tokenIssuer.issue(`service:${clientId}`, ["service"], 300)).token;
const newEmail = () => `${uniqueName("user")}@example.com`;

/** A new account, signed in (Register answers with nothing to sign in with). */
const signUp = (email = newEmail()) => registerAndLogin(client, { email, password, displayName: "Test User" });

const countRows = async () => ({
  users: (await db.db.select().from(schema.users)).length,
  outbox: (await db.db.select().from(schema.outbox)).length,
  refreshTokens: (await db.db.select().from(schema.refreshTokens)).length,
});

const tokenRow = async (token: string) => {
  const hash = new Bun.CryptoHasher("sha256").update(token).digest("hex");
  const [row] = await db.db.select().from(schema.refreshTokens).where(eq(schema.refreshTokens.tokenHash, hash));
  return row;
};

describe("Register", () => {
  test("creates a customer (email lower-cased, name trimmed), answers with nothing, and Login then gives tokens that verify against the JWKS", async () => {
    const email = newEmail();
    const before = Date.now();
    const registered = await client.register({ email: `  ${email.toUpperCase()} `, password, displayName: "  Ada Lovelace  " });
    expect(toBinary(RegisterResponseSchema, registered)).toEqual(new Uint8Array());
    const { user, tokens } = await (async () => {
      const res = await client.login({ email, password });
      return { user: res.user!, tokens: res.tokens! };
    })();
    expect(user.email).toBe(email);
    expect(user.displayName).toBe("Ada Lovelace");
    expect(user.roles).toEqual(["customer"]);
    expect(user.id).toMatch(/^[0-9a-f-]{36}$/);

    const principal = await verifier.verify(tokens.accessToken);
    expect(principal).toEqual({ subject: user.id, userId: user.id, roles: ["customer"] });
    const claims = JSON.parse(Buffer.from(tokens.accessToken.split(".")[1]!, "base64url").toString()) as Record<string, unknown>;
    expect(claims.iss).toBe(issuer);
    expect(claims.aud).toBe(audience);
    expect(claims.sub).toBe(user.id);
    expect(claims.jti).toMatch(/^[0-9a-f-]{36}$/);
    expect(claims.exp).toBe((claims.iat as number) + accessTtl);
    expect((claims.iat as number) * 1000).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000);
    const header = decodeProtectedHeader(tokens.accessToken);
    expect(header.alg).toBe("ES256");
    const jwks = (await (await fetch(`http://127.0.0.1:${http.port}/.well-known/jwks.json`)).json()) as { keys: { kid: string }[] };
    expect(jwks.keys.map((k) => k.kid)).toContain(header.kid!);
    expect(timestampDate(tokens.accessTokenExpireTime!).getTime()).toBe((claims.exp as number) * 1000);

    expect(tokens.refreshToken).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const refreshDays = (timestampDate(tokens.refreshTokenExpireTime!).getTime() - before) / 86_400_000;
    expect(refreshDays).toBeGreaterThan(29.99);
    expect(refreshDays).toBeLessThan(30.01);
  });

  test("stores an argon2id hash with m=19456, t=2 — never the password — and only the SHA-256 of the refresh token", async () => {
    const { user, tokens } = await signUp();
    const [row] = await db.db.select().from(schema.users).where(eq(schema.users.id, user.id));
    expect(row!.passwordHash).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$/);
    expect(row!.passwordHash).not.toContain(password);
    expect(await Bun.password.verify(password, row!.passwordHash)).toBe(true);
    const tokenRows = await db.db.select().from(schema.refreshTokens).where(eq(schema.refreshTokens.userId, user.id));
    expect(tokenRows).toHaveLength(1);
    expect(JSON.stringify(tokenRows)).not.toContain(tokens.refreshToken);
    expect((await tokenRow(tokens.refreshToken))?.id).toBe(tokenRows[0]!.id);
  });

  test("writes a UserRegistered event to the outbox with the account", async () => {
    const { user } = await signUp();
    const rows = await db.db.select().from(schema.outbox).where(eq(schema.outbox.routingKey, "user.registered.v1"));
    const mine = rows.map((r) => fromBinary(UserRegisteredSchema, r.payload)).filter((e) => e.userId === user.id);
    expect(mine).toHaveLength(1);
    expect(mine[0]!.email).toBe(user.email);
    expect(mine[0]!.displayName).toBe("Test User");
    expect(mine[0]!.occurTime).toBeDefined();
  });

  test("enumeration: a taken email, in any case, is answered exactly as a free one, and the account is left as it was", async () => {
    const email = newEmail();
    await signUp(email);
    const before = await countRows();
    const taken = await client.register({ email: email.toUpperCase(), password: "a password of the prober", displayName: "Someone Else" });
    const free = await client.register({ email: newEmail(), password, displayName: "Someone Else" });
    expect(toBinary(RegisterResponseSchema, taken)).toEqual(toBinary(RegisterResponseSchema, free));
    // Only the free email made an account (and its event); the taken one's owner still signs in with their own password.
    expect(await countRows()).toEqual({ ...before, users: before.users + 1, outbox: before.outbox + 1 });
    await client.login({ email, password });
    expect((await rpcError(client.login({ email, password: "a password of the prober" }))).code).toBe(status.UNAUTHENTICATED);
  });

  test("each invalid input is INVALID_ARGUMENT naming the field, and writes no row", async () => {
    const good = { email: newEmail(), password, displayName: "Valid Name" };
    const cases: [Partial<typeof good>, string][] = [
      [{ email: "" }, "email"],
      [{ email: "not-an-email" }, "email"],
      [{ email: "ada@localhost" }, "email"],
      [{ email: "ada..lovelace@example.com" }, "email"],
      [{ email: "ada lovelace@example.com" }, "email"],
      [{ email: `${"a".repeat(250)}@example.com` }, "email"],
      [{ email: `${"a".repeat(65)}@example.com` }, "email"],
      [{ password: "" }, "password"],
      [{ password: "nine char" }, "password"],
      [{ password: "x".repeat(129) }, "password"],
      [{ displayName: "" }, "display_name"],
      [{ displayName: "    " }, "display_name"],
      [{ displayName: "n".repeat(81) }, "display_name"],
      [{ displayName: "evil\u202Emoc.elgoog" }, "display_name"],
      [{ displayName: "line\nbreak" }, "display_name"],
    ];
    const before = await countRows();
    for (const [change, field] of cases) {
      const err = await rpcError(client.register({ ...good, ...change }));
      expect(err.code).toBe(status.INVALID_ARGUMENT);
      expect(err.message.startsWith(`${field}: `)).toBe(true);
    }
    expect(await countRows()).toEqual(before);
  });

  test("accepts the edges: a 10- and a 128-character password, an 80-character name, plus-addressing", async () => {
    await client.register({ email: newEmail().replace("@", "+shop@"), password: "x".repeat(10), displayName: "n".repeat(80) });
    await client.register({ email: newEmail(), password: "🔑".repeat(128), displayName: "Émilie Dupont" });
  });
});

describe("Login", () => {
  test("signs in with the right password, whatever the email's case and surrounding spaces", async () => {
    const email = newEmail();
    const { user } = await signUp(email);
    const res = await client.login({ email: ` ${email.toUpperCase()}`, password });
    expect(res.user?.id).toBe(user.id);
    expect((await verifier.verify(res.tokens!.accessToken)).subject).toBe(user.id);
    // A new sign-in starts a new refresh-token family beside the one of the registration.
    const rows = await db.db.select().from(schema.refreshTokens).where(eq(schema.refreshTokens.userId, user.id));
    expect(rows).toHaveLength(2);
    expect(new Set(rows.map((r) => r.familyId)).size).toBe(2);
  });

  test("a wrong password and an unknown email get the same UNAUTHENTICATED answer", async () => {
    const { user } = await signUp();
    const wrong = await rpcError(client.login({ email: user.email, password: "not the password" }));
    const unknown = await rpcError(client.login({ email: newEmail(), password }));
    expect(wrong.code).toBe(status.UNAUTHENTICATED);
    expect(unknown.code).toBe(status.UNAUTHENTICATED);
    expect(wrong.message).toBe("email or password is wrong");
    expect(unknown.message).toBe(wrong.message);
  });

  test("an unknown email costs a password verification too (no timing oracle)", async () => {
    const { user } = await signUp();
    const time = async (email: string, pw: string) => {
      const started = performance.now();
      await rpcError(client.login({ email, password: pw }));
      return performance.now() - started;
    };
    const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const wrong: number[] = [];
    const unknown: number[] = [];
    for (let i = 0; i < 3; i++) {
      wrong.push(await time(user.email, `wrong password ${i}`));
      unknown.push(await time(newEmail(), password));
    }
    // Without the dummy verification an unknown email answers in ~1 ms against ~25 ms.
    expect(median(unknown)).toBeGreaterThan(median(wrong) * 0.5);
  });

  test("an empty email or password is INVALID_ARGUMENT", async () => {
    expect((await rpcError(client.login({ email: "", password }))).message).toStartWith("email: ");
    expect((await rpcError(client.login({ email: newEmail(), password: "" }))).message).toStartWith("password: ");
  });

  test("after 5 failures within 15 minutes an email is throttled, even with the right password; others are not", async () => {
    const { user } = await signUp();
    for (let i = 0; i < 5; i++) {
      expect((await rpcError(client.login({ email: user.email, password: "wrong password!" }))).code).toBe(status.UNAUTHENTICATED);
    }
    const throttled = await rpcError(client.login({ email: user.email, password }));
    expect(throttled.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(throttled.message).toBe("too many attempts; try again in 15 minutes");
    const other = await signUp();
    expect((await client.login({ email: other.user.email, password })).user?.id).toBe(other.user.id);
  });

  test("unknown emails are throttled the same way", async () => {
    const email = newEmail();
    for (let i = 0; i < 5; i++) await rpcError(client.login({ email, password }));
    expect((await rpcError(client.login({ email, password }))).code).toBe(status.RESOURCE_EXHAUSTED);
  });

  test("a successful login clears the failures", async () => {
    const { user } = await signUp();
    for (let i = 0; i < 4; i++) await rpcError(client.login({ email: user.email, password: "wrong password!" }));
    expect((await client.login({ email: user.email, password })).user?.id).toBe(user.id);
    // Uncleared, this would be the sixth attempt and refused.
    expect((await rpcError(client.login({ email: user.email, password: "wrong password!" }))).code).toBe(status.UNAUTHENTICATED);
  });

  test("parallel guesses cannot get past the limit", async () => {
    const { user } = await signUp();
    const results = await Promise.allSettled(Array.from({ length: 8 }, () => client.login({ email: user.email, password: "wrong password!" })));
    const codes = results.map((r) => (r.status === "rejected" ? (r.reason as RpcError).code : status.OK));
    expect(codes.filter((c) => c === status.UNAUTHENTICATED)).toHaveLength(5);
    expect(codes.filter((c) => c === status.RESOURCE_EXHAUSTED)).toHaveLength(3);
  });

  test("a hash made with weaker parameters is upgraded at the next login", async () => {
    const email = newEmail();
    const weak = await Bun.password.hash(password, { algorithm: "argon2id", memoryCost: 4096, timeCost: 1 });
    const [row] = await db.db.insert(schema.users).values({ email, displayName: "Old Timer", passwordHash: weak }).returning();
    await client.login({ email, password });
    const [after] = await db.db.select().from(schema.users).where(eq(schema.users.id, row!.id));
    expect(after!.passwordHash).toStartWith("$argon2id$v=19$m=19456,t=2,p=1$");
    expect(await Bun.password.verify(password, after!.passwordHash)).toBe(true);
  });
});

// Each attempt here hashes or checks a password with argon2id (tens of ms, more on a busy
// machine), and a test makes up to ~60 of them: 30 s each, not bun's default 5 s.
describe("Login throttling: nobody can lock an owner out", () => {
  // The BFF signs in for shoppers elsewhere: with a service token it names their address.
  let serviceToken: string;
  beforeAll(async () => {
    serviceToken = await serviceTokenOf("bff");
  }, 30_000);
  const from = (address: string) => ({ metadata: { ...bearer(serviceToken).metadata, "x-client-address": address } });
  const guess = (email: string, address: string) => rpcError(client.login({ email, password: "wrong password!" }, from(address)));

  test("an attacker's wrong passwords from one address do not lock the owner, at another address, out", async () => {
    const { user } = await signUp();
    const codes = [];
    for (let i = 0; i < 8; i++) codes.push((await guess(user.email, "203.0.113.7")).code);
    expect(codes).toEqual([...Array(5).fill(status.UNAUTHENTICATED), ...Array(3).fill(status.RESOURCE_EXHAUSTED)]);
    expect((await client.login({ email: user.email, password }, from("198.51.100.2"))).user?.id).toBe(user.id);
    // The attacker stays refused, even with the right password.
    expect((await rpcError(client.login({ email: user.email, password }, from("203.0.113.7")))).code).toBe(status.RESOURCE_EXHAUSTED);
  }, 30_000);

  test("a distributed guess from many addresses slows the account down but never locks it: the owner still gets in", async () => {
    const { user } = await signUp();
    for (let i = 0; i < 20; i++) expect((await guess(user.email, `192.0.2.${i + 1}`)).code).toBe(status.UNAUTHENTICATED);
    const started = performance.now();
    expect((await client.login({ email: user.email, password }, from("198.51.100.3"))).user?.id).toBe(user.id);
    // Past the ceiling of 20 failures every attempt waits a second before the password is checked.
    expect(performance.now() - started).toBeGreaterThanOrEqual(1_000);
  }, 30_000);

  test("one client spraying many emails is refused after 50 failures, with a wait that grows", async () => {
    const address = "203.0.113.50";
    for (let i = 0; i < 50; i++) expect((await guess(newEmail(), address)).code).toBe(status.UNAUTHENTICATED);
    const refused = await guess(newEmail(), address);
    expect(refused.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(refused.message).toBe("too many failed sign-ins from your address; try again in 1 second");
    // Another shopper is not affected.
    const { user } = await signUp();
    expect((await client.login({ email: user.email, password }, from("198.51.100.4"))).user?.id).toBe(user.id);
  }, 30_000);

  test("a client address in the metadata of a caller without a service token is ignored: rotating it does not escape the limit", async () => {
    const { user } = await signUp();
    for (let i = 0; i < 5; i++) {
      const err = await rpcError(client.login({ email: user.email, password: "wrong password!" }, { metadata: { "x-client-address": `192.0.2.${100 + i}` } }));
      expect(err.code).toBe(status.UNAUTHENTICATED);
    }
    const err = await rpcError(client.login({ email: user.email, password }, { metadata: { "x-client-address": "192.0.2.200" } }));
    expect(err.code).toBe(status.RESOURCE_EXHAUSTED);
  }, 30_000);

  test("sweeping a list of emails through sign-up is throttled per address: after 50 taken emails even a free one is refused", async () => {
    const { user } = await signUp();
    const address = "203.0.113.60";
    for (let i = 0; i < 50; i++) {
      expect(toBinary(RegisterResponseSchema, await client.register({ email: user.email, password, displayName: "Probe" }, from(address)))).toEqual(
        new Uint8Array(),
      );
    }
    const before = await countRows();
    const refused = await rpcError(client.register({ email: newEmail(), password, displayName: "Probe" }, from(address)));
    expect(refused.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(refused.message).toBe("too many failed sign-ins from your address; try again in 1 second");
    expect(await countRows()).toEqual(before);
  }, 30_000);

  test("sign-ups that create accounts do not count: many people behind one address (an office) can all sign up", async () => {
    const emails = Array.from({ length: 52 }, newEmail);
    for (const email of emails) await client.register({ email, password, displayName: "Colleague" }, from("198.51.100.61"));
    // Every one of them has an account: the last can sign in.
    expect((await client.login({ email: emails.at(-1)!, password })).user?.displayName).toBe("Colleague");
  }, 30_000);

  test("a malformed client address from a service is INVALID_ARGUMENT", async () => {
    const err = await rpcError(client.login({ email: newEmail(), password }, from("not an address")));
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.message).toContain("x-client-address must be an IP address");
  });
});

describe("login throttle delays", () => {
  test("past its free failures an address waits a delay that doubles with each further failure", async () => {
    const throttle = new LoginThrottle(redis, { addressFreeFailures: 2, addressBaseDelayMs: 200 });
    const address = `test-${crypto.randomUUID()}`;
    const tryOnce = () =>
      throttle.attempt(newEmail(), address).then(
        () => "ok",
        (err: RpcError) => err.message,
      );
    expect([await tryOnce(), await tryOnce()]).toEqual(["ok", "ok"]);
    expect(await tryOnce()).toBe("too many failed sign-ins from your address; try again in 1 second");
    await eventually(async () => (await tryOnce()) === "ok", { what: "the address to be let through", timeoutMs: 2_000, intervalMs: 50 });
    const afterThird = performance.now();
    await eventually(async () => (await tryOnce()) === "ok", { what: "the address to be let through", timeoutMs: 2_000, intervalMs: 50 });
    // The fourth failure waits 400 ms after the third, twice the first delay.
    expect(performance.now() - afterThird).toBeGreaterThanOrEqual(350);
  });
});

describe("Refresh", () => {
  test("rotates: new tokens work, and the old refresh token is marked used and replaced", async () => {
    const { user, tokens } = await signUp();
    const { tokens: next } = await client.refresh({ refreshToken: tokens.refreshToken });
    expect(next!.refreshToken).not.toBe(tokens.refreshToken);
    expect((await verifier.verify(next!.accessToken)).subject).toBe(user.id);
    const [old, fresh] = [await tokenRow(tokens.refreshToken), await tokenRow(next!.refreshToken)];
    expect(old?.usedAt).toBeInstanceOf(Date);
    expect(old?.replacedBy).toBe(fresh!.id);
    expect(fresh?.familyId).toBe(old!.familyId);
    expect(fresh?.usedAt).toBeNull();
    const { tokens: third } = await client.refresh({ refreshToken: next!.refreshToken });
    expect(third?.refreshToken).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  test("reusing an old refresh token revokes its family: the newest token fails too, other sign-ins do not", async () => {
    const { user, tokens: first } = await signUp();
    const other = await client.login({ email: user.email, password });
    const { tokens: second } = await client.refresh({ refreshToken: first.refreshToken });
    const reuse = await rpcError(client.refresh({ refreshToken: first.refreshToken }));
    expect(reuse.code).toBe(status.UNAUTHENTICATED);
    expect(reuse.message).toBe("refresh token reuse detected; sign in again");
    const newest = await rpcError(client.refresh({ refreshToken: second!.refreshToken }));
    expect(newest.code).toBe(status.UNAUTHENTICATED);
    const family = await db.db
      .select()
      .from(schema.refreshTokens)
      .where(eq(schema.refreshTokens.familyId, (await tokenRow(first.refreshToken))!.familyId));
    expect(family).toHaveLength(2);
    expect(family.every((r) => r.revokedAt !== null)).toBe(true);
    expect((await client.refresh({ refreshToken: other.tokens!.refreshToken })).tokens?.accessToken).toBeTruthy();
  });

  test("of concurrent refreshes with one token exactly one succeeds, and the others count as reuse", async () => {
    const { tokens } = await signUp();
    const results = await Promise.allSettled(Array.from({ length: 4 }, () => client.refresh({ refreshToken: tokens.refreshToken })));
    const ok = results.filter((r) => r.status === "fulfilled");
    expect(ok).toHaveLength(1);
    for (const r of results) if (r.status === "rejected") expect((r.reason as RpcError).code).toBe(status.UNAUTHENTICATED);
    const family = await db.db
      .select()
      .from(schema.refreshTokens)
      .where(eq(schema.refreshTokens.familyId, (await tokenRow(tokens.refreshToken))!.familyId));
    // The original and the one successor; the losers created nothing. A loser presented a used
    // token, which is reuse: the family, the winner's new token included, is revoked.
    expect(family).toHaveLength(2);
    expect(family.every((r) => r.revokedAt !== null)).toBe(true);
  });

  test("an expired refresh token is UNAUTHENTICATED", async () => {
    const { tokens } = await signUp();
    const row = await tokenRow(tokens.refreshToken);
    await db.db
      .update(schema.refreshTokens)
      .set({ expiresAt: new Date(Date.now() - 1000) })
      .where(eq(schema.refreshTokens.id, row!.id));
    const err = await rpcError(client.refresh({ refreshToken: tokens.refreshToken }));
    expect(err.code).toBe(status.UNAUTHENTICATED);
    expect(err.message).toContain("expired");
  });

  test("an unknown or malformed token is UNAUTHENTICATED, an empty one INVALID_ARGUMENT", async () => {
    for (const refreshToken of ["A".repeat(43), "short", "x".repeat(5000)]) {
      const err = await rpcError(client.refresh({ refreshToken }));
      expect(err.code).toBe(status.UNAUTHENTICATED);
      expect(err.message).toContain("not valid");
    }
    expect((await rpcError(client.refresh({ refreshToken: "" }))).message).toStartWith("refresh_token: ");
  });
});

describe("Logout", () => {
  test("revokes the session: its tokens no longer refresh; logging out again is fine", async () => {
    const { tokens } = await signUp();
    const { tokens: next } = await client.refresh({ refreshToken: tokens.refreshToken });
    await client.logout({ refreshToken: next!.refreshToken });
    const err = await rpcError(client.refresh({ refreshToken: next!.refreshToken }));
    expect(err.code).toBe(status.UNAUTHENTICATED);
    expect(err.message).toContain("sign in again");
    await client.logout({ refreshToken: next!.refreshToken });
    await client.logout({ refreshToken: "B".repeat(43) });
    expect((await rpcError(client.logout({ refreshToken: "" }))).code).toBe(status.INVALID_ARGUMENT);
  });
});

describe("GetUser", () => {
  let alice: Awaited<ReturnType<typeof signUp>>;
  let bob: Awaited<ReturnType<typeof signUp>>;
  beforeAll(async () => {
    alice = await signUp();
    bob = await signUp();
  });

  test("needs a token", async () => {
    expect((await rpcError(client.getUser({ id: "" }))).code).toBe(status.UNAUTHENTICATED);
  });

  test("an empty id, or one's own, returns the caller", async () => {
    expect((await client.getUser({}, bearer(alice.tokens.accessToken))).user?.email).toBe(alice.user.email);
    expect((await client.getUser({ id: alice.user.id.toUpperCase() }, bearer(alice.tokens.accessToken))).user?.id).toBe(alice.user.id);
  });

  test("another user's account is NOT_FOUND, as a missing one is", async () => {
    const other = await rpcError(client.getUser({ id: bob.user.id }, bearer(alice.tokens.accessToken)));
    expect(other.code).toBe(status.NOT_FOUND);
    const ghost = "00000000-0000-4000-8000-000000000000";
    const missing = await rpcError(client.getUser({ id: ghost }, bearer(alice.tokens.accessToken)));
    expect(missing.code).toBe(status.NOT_FOUND);
    expect(other.message).toBe(`no user has id ${bob.user.id}`);
    expect((await rpcError(client.getUser({ id: "nope" }, bearer(alice.tokens.accessToken)))).code).toBe(status.INVALID_ARGUMENT);
  });

  test("an admin reads any user", async () => {
    const adminEmail = newEmail();
    expect(await seedAdmin(db, accounts, { email: adminEmail, password })).toEqual({ created: true });
    expect(await seedAdmin(db, accounts, { email: adminEmail, password: "another password" })).toEqual({ created: false });
    const admin = await client.login({ email: adminEmail, password });
    expect(admin.user?.roles).toEqual(["customer", "admin"]);
    expect((await client.getUser({ id: bob.user.id }, bearer(admin.tokens!.accessToken))).user?.email).toBe(bob.user.email);
    const missing = await rpcError(client.getUser({ id: "00000000-0000-4000-8000-000000000000" }, bearer(admin.tokens!.accessToken)));
    expect(missing.code).toBe(status.NOT_FOUND);
  });

  test("a service reads any user, but has no 'own' account", async () => {
    const accessToken = await serviceTokenOf("orders");
    expect((await client.getUser({ id: bob.user.id }, bearer(accessToken))).user?.id).toBe(bob.user.id);
    expect((await rpcError(client.getUser({ id: "" }, bearer(accessToken)))).code).toBe(status.PERMISSION_DENIED);
  });

  test("tokens not signed by identity's keys are UNAUTHENTICATED", async () => {
    const stranger = await startTestIssuer({ issuer, audience });
    try {
      const forged = await stranger.token({ sub: bob.user.id, roles: ["customer", "admin"] });
      const err = await rpcError(client.getUser({ id: alice.user.id }, bearer(forged)));
      expect(err.code).toBe(status.UNAUTHENTICATED);
      expect(err.message).toContain("key");
      const unsigned = await rpcError(client.getUser({}, bearer(stranger.unsignedToken({ sub: bob.user.id }))));
      expect(unsigned.code).toBe(status.UNAUTHENTICATED);
    } finally {
      stranger.stop();
    }
  });
});

describe("IssueServiceToken (retired)", () => {
  test("refuses even the old shared secret with FAILED_PRECONDITION naming the token endpoint that replaced it", async () => {
    const err = await rpcError(client.issueServiceToken({ serviceName: "orders", secret: "bazaar-dev-internal-secret-change-me" }));
    expect(err.code).toBe(status.FAILED_PRECONDITION);
    expect(err.message).toContain("IssueServiceToken is retired");
    expect(err.message).toContain("POST /oauth2/token");
    expect(err.preconditions).toEqual([
      { type: "DEPRECATED", subject: "bazaar.identity.v1.IdentityService/IssueServiceToken", description: "use the OAuth 2.0 token endpoint /oauth2/token" },
    ]);
  });
});

describe("signing keys", () => {
  test("opening the keys again finds the same single key instead of making another", async () => {
    const again = await SigningKeys.open(db, keySettings);
    const rows = await db.db.select().from(schema.signingKeys);
    expect(rows).toHaveLength(1);
    expect(again.signingKey().kid).toBe(rows[0]!.kid);
    expect(again.jwks().keys).toEqual([rows[0]!.publicJwk]);
    expect(JSON.stringify(again.jwks())).not.toContain('"d"');
  });
});

describe("throttle storage", () => {
  test("keeps failure counts under the Redis prefix, keyed by a hash of the email, expiring", async () => {
    const email = newEmail();
    await rpcError(client.login({ email, password }));
    const keys = await redis.client.keys(`${redisPrefix}login-attempts:*`);
    expect(keys.length).toBeGreaterThan(0);
    expect(keys.some((k) => k.includes(email))).toBe(false);
    const hashed = new Bun.CryptoHasher("sha256").update(email).digest("hex");
    const key = `${redisPrefix}login-attempts:${hashed}`;
    const ttl = await redis.client.pTTL(key);
    expect(ttl).toBeGreaterThan(14 * 60_000);
    expect(ttl).toBeLessThanOrEqual(15 * 60_000);
  });
});
