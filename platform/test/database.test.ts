/**
 * The chassis's database client on the machine's Postgres: drizzle's queries run as prepared
 * statements (parsed once per connection, then only bound and executed), transactions,
 * savepoints, set_config and advisory locks work on them, and every statement sent is
 * counted in bazaar_db_queries_total.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { eq, sql } from "drizzle-orm";
import { type Database, openDatabase } from "@bazaar/platform/db";
import { dbQueries, dbPoolConnections, dbPoolMax, dbPoolPending } from "@bazaar/platform/metrics";
import { eventually } from "@bazaar/testkit/eventually";
import { repoRoot, testDatabaseUrl } from "@bazaar/testkit/fixtures";
import * as catalogSchema from "../../services/catalog/src/db/schema.ts";

const target = testDatabaseUrl("platform_db");
let database: Database<typeof catalogSchema>;

beforeAll(async () => {
  database = await openDatabase({ url: target.url, schema: catalogSchema, migrationsFolder: `${repoRoot}/services/catalog/drizzle` });
}, 60_000);

afterAll(async () => {
  await database?.close().catch(() => {});
  await target.drop();
}, 30_000);

const { products } = catalogSchema;

async function statementsCounted(): Promise<number> {
  const { values } = await dbQueries.get();
  return values.find((v) => v.labels.database === database.name)?.value ?? 0;
}

test("a drizzle query with parameters is prepared once per connection and reused for other values", async () => {
  // In one transaction, so every query runs on one connection: pg_prepared_statements lists
  // only its own session's statements.
  const texts = await database.db.transaction(async (tx) => {
    const byId = (id: string) => tx.select({ name: products.name }).from(products).where(eq(products.id, id));
    expect(await byId(crypto.randomUUID())).toEqual([]);
    expect(await byId(crypto.randomUUID())).toEqual([]);
    return tx.execute<{ statement: string }>(sql`select statement from pg_prepared_statements where statement like ${'%from "products"%'}`);
  });
  expect(texts.map((t) => t.statement)).toEqual(['select "name" from "products" where "products"."id" = $1']);
});

test("transactions, savepoints, set_config and advisory locks work on prepared statements", async () => {
  const inside = await database.db.transaction(async (tx) => {
    await tx.execute(sql`select set_config('lock_timeout', ${"250ms"}, true)`);
    await tx.execute(sql`select pg_advisory_xact_lock(hashtext(${"bazaar:test:prepared"}))`);
    // A savepoint rolled back leaves the transaction usable.
    await tx
      .transaction(async (nested) => {
        await nested.execute(sql`select set_config('lock_timeout', ${"999ms"}, true)`);
        throw new Error("roll back to the savepoint");
      })
      .catch(() => {});
    const [row] = await tx.execute<{ lock_timeout: string }>(sql`select current_setting(${"lock_timeout"}) as lock_timeout`);
    return row?.lock_timeout;
  });
  expect(inside).toBe("250ms");
  // set_config(…, true) and the transaction-scoped lock ended with the transaction.
  const [after] = await database.db.execute<{ lock_timeout: string; held: number }>(
    sql`select current_setting(${"lock_timeout"}) as lock_timeout, (select count(*)::int from pg_locks where locktype = ${"advisory"} and pid = pg_backend_pid()) as held`,
  );
  expect(after).toEqual({ lock_timeout: "0", held: 0 });
});

test("every statement sent is counted: a query, and a transaction's BEGIN and COMMIT besides its queries", async () => {
  const start = await statementsCounted();
  await database.db.select({ id: products.id }).from(products).limit(1);
  expect(await statementsCounted()).toBe(start + 1);
  await database.db.transaction(async (tx) => {
    await tx.select({ id: products.id }).from(products).limit(1);
    await tx.select({ id: products.id }).from(products).limit(2);
  });
  expect(await statementsCounted()).toBe(start + 1 + 4);
});

test("the pool gauges count queries and transactions holding a connection, and what waits beyond the pool's size", async () => {
  const gauge = async (metric: typeof dbPoolMax | typeof dbPoolPending | typeof dbPoolConnections) =>
    (await metric.get()).values.find((v) => v.labels.pool === database.name)?.value;
  expect(await gauge(dbPoolMax)).toBe(10);
  expect(await gauge(dbPoolConnections)).toBe(0);
  // A fragment inside a query is not a query of its own: it holds no connection.
  const fragment = database.sql`select 1`;
  expect(await gauge(dbPoolConnections)).toBe(0);
  void fragment;
  // 12 at once on a pool of 10: one transaction and 11 queries, each held for 300 ms by Postgres.
  let releaseTransaction!: () => void;
  const transactionMayEnd = new Promise<void>((r) => (releaseTransaction = r));
  const transaction = database.db.transaction(async (tx) => {
    await tx.execute(sql`select 1`);
    await transactionMayEnd;
  });
  const queries = Array.from({ length: 11 }, () => database.sql`select pg_sleep(0.3)`.then(() => {}));
  await eventually(async () => (await gauge(dbPoolConnections)) === 10, { what: "10 connections in use", timeoutMs: 5_000 });
  expect(await gauge(dbPoolPending)).toBe(2);
  releaseTransaction();
  await Promise.all([transaction, ...queries]);
  expect(await gauge(dbPoolConnections)).toBe(0);
  expect(await gauge(dbPoolPending)).toBe(0);
});
