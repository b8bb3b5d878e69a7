import { describe, expect, test } from "bun:test";
import amqp from "amqplib";
import postgres from "postgres";
import { createClient as createRedisClient } from "redis";
import { databaseName } from "@bazaar/platform/db";
import { testEnv } from "../src/fixtures.ts";
import { TestScope } from "../src/test-scope.ts";

// The scope against the real Postgres, Redis and RabbitMQ: what it sets up exists and works,
// and cleanup() removes all of it.

async function databaseExists(url: string): Promise<boolean> {
  const admin = postgres(testEnv.POSTGRES_URL, { max: 1, onnotice: () => {} });
  try {
    return (await admin`select 1 from pg_database where datname = ${databaseName(url)}`).length === 1;
  } finally {
    await admin.end({ timeout: 5 });
  }
}

describe("TestScope", () => {
  test("database() opens a service's database with its migrations applied; cleanup drops it", async () => {
    const scope = new TestScope();
    const database = await scope.database("catalog", {});
    const tables = await database.sql<{ name: string }[]>`select table_name as name from information_schema.tables where table_schema = 'public'`;
    expect(tables.map((t) => t.name)).toContain("products");
    expect(await databaseExists(database.url)).toBe(true);
    await scope.cleanup();
    expect(await databaseExists(database.url)).toBe(false);
  });

  test("database() of a service that owns no database is refused by name", async () => {
    const scope = new TestScope();
    await expect(scope.database("cart", {})).rejects.toThrow("cart has no database of its own in the service catalog");
    await scope.cleanup();
  });

  test("vhost() is a vhost one can connect to until cleanup deletes it", async () => {
    const scope = new TestScope();
    const vhost = await scope.vhost();
    const connection = await amqp.connect(vhost.url);
    await connection.close();
    await scope.cleanup();
    await expect(amqp.connect(vhost.url)).rejects.toThrow();
  });

  test("redisPrefix() keys are deleted at cleanup, other keys are not", async () => {
    const scope = new TestScope();
    const prefix = scope.redisPrefix();
    const outside = `${new TestScope().redisPrefix()}kept`;
    const redis = createRedisClient({ url: testEnv.REDIS_URL });
    await redis.connect();
    try {
      await redis.set(`${prefix}a`, "1");
      await redis.set(outside, "1");
      await scope.cleanup();
      expect(await redis.exists(`${prefix}a`)).toBe(0);
      expect(await redis.exists(outside)).toBe(1);
    } finally {
      await redis.del(outside);
      await redis.close();
    }
  });

  test("issuer() serves its JWKS until cleanup stops it", async () => {
    const scope = new TestScope();
    const issuer = await scope.issuer();
    expect(((await (await fetch(issuer.jwksUrl)).json()) as { keys: unknown[] }).keys).toHaveLength(1);
    await scope.cleanup();
    await expect(fetch(issuer.jwksUrl)).rejects.toThrow();
  });

  test("cleanup runs the last step first, runs every step past a failure, and then fails naming each", async () => {
    const scope = new TestScope();
    const ran: string[] = [];
    scope.defer(() => void ran.push("first"), "the first step");
    scope.add(
      "broken",
      () => {
        ran.push("broken");
        throw new Error("boom");
      },
      "the broken step",
    );
    scope.defer(async () => void ran.push("last"), "the last step");
    await expect(scope.cleanup()).rejects.toThrow("the broken step failed: boom");
    expect(ran).toEqual(["last", "broken", "first"]);
    // Each step runs once: a second cleanup has nothing left to do.
    await scope.cleanup();
    expect(ran).toHaveLength(3);
  });

  test("two failing steps fail cleanup with both", async () => {
    const scope = new TestScope();
    scope.defer(() => Promise.reject(new Error("one")), "step one");
    scope.defer(() => Promise.reject(new Error("two")), "step two");
    const err = await scope.cleanup().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AggregateError);
    expect((err as AggregateError).message).toBe("2 cleanup steps failed: step two failed: two; step one failed: one");
  });
});
