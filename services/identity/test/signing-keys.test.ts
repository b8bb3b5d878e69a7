/**
 * Signing keys against a real Postgres: replicas maintaining one table at the same moment,
 * keys from before the lifecycle migration, and the operator's rotate and revoke.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { calculateJwkThumbprint, exportJWK, generateKeyPair } from "jose";
import { openDatabase } from "@bazaar/platform/db";
import { configureLogging } from "@bazaar/platform/log";
import { TestScope } from "@bazaar/testkit/test-scope";
import * as schema from "../src/db/schema.ts";
import { type IdentityDatabase, maintainSigningKeys, type RotationSettings, retentionSeconds, SigningKeys } from "../src/signing-keys.ts";

const scope = new TestScope();
const migrations = new URL("../drizzle", import.meta.url).pathname;
const settings: RotationSettings = { rotationSeconds: 3600, leadSeconds: 600, longestTokenTtlSeconds: 900 };

beforeAll(() => configureLogging("identity", "error"));
afterAll(() => scope.cleanup(), 60_000);

/** Opens `url` as a replica of its own would: a connection pool of its own. */
async function replica(url: string, folder = migrations): Promise<IdentityDatabase> {
  return scope.add(await openDatabase({ url, schema, migrationsFolder: folder }), (d) => d.close(), "closing a replica's database");
}

/** Moves every key's times back by `seconds`, as if that much time had passed. */
async function age(database: IdentityDatabase, seconds: number): Promise<void> {
  await database.sql.unsafe(`
    update signing_keys set created_at = created_at - interval '${seconds} seconds', signs_from = signs_from - interval '${seconds} seconds',
      signs_until = signs_until - interval '${seconds} seconds', published_until = published_until - interval '${seconds} seconds'`);
}

const kids = async (database: IdentityDatabase) => (await database.db.select().from(schema.signingKeys)).map((k) => k.kid).sort();

describe("replicas sharing the keys table", () => {
  test("two replicas finding a successor due at the same moment make one between them, rotation after rotation", async () => {
    const url = scope.databaseUrl("identity");
    const [a, b] = [await replica(url), await replica(url)];
    await Promise.all([maintainSigningKeys(a, settings), maintainSigningKeys(b, settings)]);
    expect(await kids(a)).toHaveLength(1);
    for (let rotation = 0; rotation < 5; rotation++) {
      const before = await kids(a);
      // A rotation has passed since the newest key started signing: a successor is due, and both replicas see it so.
      await age(a, settings.rotationSeconds);
      const [fromA, fromB] = await Promise.all([maintainSigningKeys(a, settings), maintainSigningKeys(b, settings)]);
      const made = (await kids(a)).filter((k) => !before.includes(k));
      expect(made).toHaveLength(1);
      expect(fromA.keys.map((k) => k.kid).sort()).toEqual(fromB.keys.map((k) => k.kid).sort());
    }
  });
});

describe("keys from before the lifecycle migration", () => {
  test("keep working: the newest active key signs on, older active ones retire, inactive ones are gone", async () => {
    const url = scope.databaseUrl("identity");
    // The migrations as they were before this one: the journal's first two entries.
    const folder = mkdtempSync(join(tmpdir(), "identity-drizzle-"));
    scope.defer(() => rmSync(folder, { recursive: true, force: true }), "removing the old migrations");
    cpSync(migrations, folder, { recursive: true });
    const journal = JSON.parse(readFileSync(join(folder, "meta/_journal.json"), "utf8")) as { entries: { tag: string }[] };
    journal.entries = journal.entries.filter((e) => e.tag.startsWith("0000_") || e.tag.startsWith("0001_"));
    writeFileSync(join(folder, "meta/_journal.json"), JSON.stringify(journal));
    const old = await replica(url, folder);
    const legacy = async (createdSecondsAgo: number, active: boolean) => {
      const { privateKey, publicKey } = await generateKeyPair("ES256", { extractable: true });
      const pub = await exportJWK(publicKey);
      const kid = await calculateJwkThumbprint(pub);
      await old.sql`insert into signing_keys (kid, private_jwk, public_jwk, created_at, active)
        values (${kid}, ${JSON.stringify({ ...(await exportJWK(privateKey)), kid, alg: "ES256" })}::jsonb, ${JSON.stringify({ ...pub, kid, alg: "ES256", use: "sig" })}::jsonb,
          now() - make_interval(secs => ${createdSecondsAgo}), ${active})`;
      return kid;
    };
    const older = await legacy(7200, true);
    const newest = await legacy(60, true);
    const inactive = await legacy(30, false);

    const keys = await SigningKeys.open(await replica(url), { ...settings, reloadMs: 60_000 });
    expect(keys.signingKey().kid).toBe(newest);
    expect(
      keys
        .jwks()
        .keys.map((k) => k.kid)
        .sort(),
    ).toEqual([older, newest].sort());
    const rows = await old.db.select().from(schema.signingKeys);
    expect(rows.map((r) => r.kid)).not.toContain(inactive);
    const retired = rows.find((r) => r.kid === older)!;
    const current = rows.find((r) => r.kid === newest)!;
    expect(retired.signsUntil).toEqual(current.signsFrom);
    expect(retired.publishedUntil!.getTime()).toBe(current.signsFrom.getTime() + retentionSeconds(settings) * 1000);
    expect(current.signsFrom).toEqual(current.createdAt);
    expect(current.signsUntil).toBeNull();
  });
});

describe("the operator's rotation", () => {
  test("rotating now publishes a successor at once that signs a lead later; the current key signs until then", async () => {
    const database = await replica(scope.databaseUrl("identity"));
    const [first] = (await maintainSigningKeys(database, settings)).keys;
    const { keys } = await maintainSigningKeys(database, settings, { rotateNow: true });
    const current = keys.find((k) => k.kid === first!.kid)!;
    const successor = keys.find((k) => k.kid !== first!.kid)!;
    expect(keys).toHaveLength(2);
    expect(successor.signsFrom.getTime() - successor.createdAt.getTime()).toBe(settings.leadSeconds * 1000);
    expect(current.signsUntil).toEqual(successor.signsFrom);
    const ring = await SigningKeys.open(database, { ...settings, reloadMs: 60_000 });
    expect(ring.signingKey().kid).toBe(first!.kid);
    expect(ring.signingKey(successor.signsFrom.getTime()).kid).toBe(successor.kid);
  });

  test("revoking removes every key from the JWKS at once and signs with a new one straight away", async () => {
    const database = await replica(scope.databaseUrl("identity"));
    await maintainSigningKeys(database, settings);
    await maintainSigningKeys(database, settings, { rotateNow: true });
    const before = await kids(database);
    const { keys } = await maintainSigningKeys(database, settings, { revoke: true });
    expect(keys).toHaveLength(1);
    expect(before).not.toContain(keys[0]!.kid);
    const ring = await SigningKeys.open(database, { ...settings, reloadMs: 60_000 });
    expect(ring.jwks().keys.map((k) => k.kid)).toEqual([keys[0]!.kid]);
    expect(ring.signingKey().kid).toBe(keys[0]!.kid);
  });
});
