import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash, randomBytes } from "node:crypto";
import { eq, inArray } from "drizzle-orm";
import { connectRedis } from "@bazaar/platform/cache";
import { UnauthenticatedError } from "@bazaar/platform/errors";
import { configureLogging } from "@bazaar/platform/log";
import { testEnv, uniqueName } from "@bazaar/testkit/fixtures";
import { eventually } from "@bazaar/testkit/eventually";
import { TestScope } from "@bazaar/testkit/test-scope";
import { AccessTokenIssuer } from "../src/access-tokens.ts";
import { Accounts } from "../src/accounts.ts";
import * as schema from "../src/db/schema.ts";
import { LoginThrottle } from "../src/login-throttle.ts";
import { purgeExpiredRefreshTokens, RefreshTokenPurge } from "../src/refresh-token-purge.ts";
import { type IdentityDatabase, SigningKeys } from "../src/signing-keys.ts";

// The purge against a real Postgres. Each test gives its rows expiries that only its own grace
// reaches, so the tests of this file do not purge one another's rows.
const scope = new TestScope();
const hour = 3600;
const day = 24 * hour;
let db: IdentityDatabase;
let accounts: Accounts;
let userId: string;

beforeAll(async () => {
  configureLogging("identity", "error");
  db = await scope.database("identity", schema);
  const keys = await SigningKeys.open(db, { rotationSeconds: 30 * day, leadSeconds: hour, longestTokenTtlSeconds: 900, reloadMs: 60_000 });
  const redis = scope.add(await connectRedis(testEnv.REDIS_URL, scope.redisPrefix()), (r) => r.close());
  const issuer = new AccessTokenIssuer(keys, { issuer: "https://identity.bazaar.local", audience: "bazaar" });
  accounts = new Accounts(db, issuer, new LoginThrottle(redis), { accessTokenTtlSeconds: 900, refreshTokenTtlSeconds: 30 * day });
  userId = (await accounts.createAccount({ email: `${uniqueName("purge")}@example.com`, password: "correct horse battery", displayName: "Purge" })).id;
}, 60_000);

afterAll(() => scope.cleanup(), 60_000);

const secondsFromNow = (seconds: number) => new Date(Date.now() + seconds * 1000);

/** Inserts a family with one token per expiry (seconds from now); resolves with the family id. */
async function family(...expiries: number[]): Promise<string> {
  const familyId = crypto.randomUUID();
  await db.db.insert(schema.refreshTokens).values(
    expiries.map((seconds) => ({
      userId,
      familyId,
      tokenHash: createHash("sha256").update(randomBytes(32)).digest("hex"),
      expiresAt: secondsFromNow(seconds),
    })),
  );
  return familyId;
}

const tokensOf = async (...familyIds: string[]) =>
  (await db.db.select().from(schema.refreshTokens).where(inArray(schema.refreshTokens.familyId, familyIds))).length;

describe("refresh token purge", () => {
  test("deletes a family expired past the grace; keeps live ones and one expired within the grace", async () => {
    const gone = await family(-2 * hour);
    const live = await family(hour);
    const justExpired = await family(-60);
    expect(await purgeExpiredRefreshTokens(db, { graceSeconds: hour })).toBeGreaterThanOrEqual(1);
    expect(await tokensOf(gone)).toBe(0);
    expect(await tokensOf(live)).toBe(1);
    expect(await tokensOf(justExpired)).toBe(1);
  });

  test("a family whose tokens all expired goes whole; one with a live token keeps even its expired ones", async () => {
    const empty = await family(-3 * day, -3 * day, -2 * day - hour);
    const alive = await family(-3 * day, -3 * day, hour);
    await purgeExpiredRefreshTokens(db, { graceSeconds: 2 * day });
    expect(await tokensOf(empty)).toBe(0);
    expect(await tokensOf(alive)).toBe(3);
  });

  test("works through more rows than a batch", async () => {
    const families = await Promise.all(Array.from({ length: 5 }, () => family(...Array.from({ length: 5 }, () => -5 * day))));
    expect(await purgeExpiredRefreshTokens(db, { graceSeconds: 4 * day, batchSize: 4 })).toBe(25);
    expect(await tokensOf(...families)).toBe(0);
  });

  test("reuse detection still revokes the family after a purge, though the reused token has expired", async () => {
    const { session } = await accounts.login((await accounts.user(userId)).email, "correct horse battery", "192.0.2.1");
    const next = await accounts.refresh(session.refreshToken);
    const hash = createHash("sha256").update(session.refreshToken).digest("hex");
    await db.db
      .update(schema.refreshTokens)
      .set({ expiresAt: secondsFromNow(-10 * day) })
      .where(eq(schema.refreshTokens.tokenHash, hash));
    await purgeExpiredRefreshTokens(db, { graceSeconds: hour });
    const reuse = accounts.refresh(session.refreshToken);
    await expect(reuse).rejects.toThrow(UnauthenticatedError);
    await expect(reuse).rejects.toThrow("refresh token reuse detected; sign in again");
    await expect(accounts.refresh(next.refreshToken)).rejects.toThrow("the refresh token was revoked; sign in again");
  });

  test("two purges at once delete each row once and neither fails", async () => {
    const families = await Promise.all(Array.from({ length: 40 }, () => family(...Array.from({ length: 25 }, () => -40 * day))));
    const counts = await Promise.all([
      purgeExpiredRefreshTokens(db, { graceSeconds: 30 * day, batchSize: 50 }),
      purgeExpiredRefreshTokens(db, { graceSeconds: 30 * day, batchSize: 50 }),
    ]);
    expect(counts[0] + counts[1]).toBe(1000);
    expect(await tokensOf(...families)).toBe(0);
  });

  test("the loop purges at start and on its interval, and purges no more once stopped", async () => {
    const first = await family(-60 * day);
    const purge = new RefreshTokenPurge(db, 50, { graceSeconds: 50 * day }).start();
    try {
      await eventually(async () => (await tokensOf(first)) === 0 || undefined, { timeoutMs: 5000 });
      const second = await family(-60 * day);
      await eventually(async () => (await tokensOf(second)) === 0 || undefined, { timeoutMs: 5000 });
    } finally {
      await purge.stop();
    }
    expect(await purge.purge()).toBe(0);
  });
});
