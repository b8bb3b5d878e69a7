/**
 * A service's database pool through a Postgres outage (a Postgres of the test's own, stopped
 * and started): queries fail at once for as long as it lasts — never hang in the pool's
 * reconnect backoff — and work again within a fraction of a second of its return.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { type Database, openDatabase } from "@bazaar/platform/db";
import { repoRoot } from "@bazaar/testkit/fixtures";
import { PrivatePostgres } from "@bazaar/testkit/private-servers";
import * as catalogSchema from "../../services/catalog/src/db/schema.ts";

let postgres: PrivatePostgres;
let database: Database<typeof catalogSchema>;

beforeAll(async () => {
  postgres = await PrivatePostgres.create();
  database = await openDatabase({ url: postgres.url("bazaar_catalog"), schema: catalogSchema, migrationsFolder: `${repoRoot}/services/catalog/drizzle` });
  // Every connection of the pool open, as in a busy service.
  await Promise.all(Array.from({ length: 10 }, () => database.sql`select pg_sleep(0.05)`));
}, 60_000);

afterAll(async () => {
  await database?.close().catch(() => {});
  await postgres?.destroy();
}, 30_000);

/** How long one query takes to answer, and whether it worked; bounded to 5 s. */
async function timedQuery(): Promise<{ ms: number; ok: boolean }> {
  const started = performance.now();
  const ok = await Promise.race([
    database.sql`select 1`.then(
      () => true,
      () => false,
    ),
    Bun.sleep(5_000).then(() => false),
  ]);
  return { ms: performance.now() - started, ok };
}

test("queries fail at once through a 10 s outage (none waits out a reconnect backoff) and work again within 1 s of Postgres's return", async () => {
  await postgres.stop("immediate");
  const during: number[] = [];
  const until = Date.now() + 10_000;
  while (Date.now() < until) {
    const { ms, ok } = await timedQuery();
    expect(ok).toBe(false);
    during.push(ms);
    await Bun.sleep(100);
  }
  await postgres.start();
  const back = performance.now();
  let first: number | undefined;
  while (first === undefined && performance.now() - back < 10_000) {
    if ((await timedQuery()).ok) first = performance.now() - back;
    else await Bun.sleep(20);
  }
  const slowest = Math.max(...during);
  console.log(
    `${during.length} queries during the outage, slowest failed in ${slowest.toFixed(0)} ms; working again ${first?.toFixed(0)} ms after Postgres was back`,
  );
  // postgres.js's default backoff (3^n / 100 s, up to 20 s) made them wait 3 s and more after a few seconds down.
  expect(slowest).toBeLessThan(1_000);
  expect(first).toBeDefined();
  expect(first!).toBeLessThan(1_000);
}, 60_000);
