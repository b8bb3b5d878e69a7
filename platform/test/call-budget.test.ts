import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { DescService } from "@bufbuild/protobuf";
import { status } from "@grpc/grpc-js";
import { RpcError } from "@bazaar/platform/errors";
import type { ServiceAccess, ServiceImpl } from "@bazaar/platform/grpc/server";
import { createClient, type GrpcClient } from "@bazaar/platform/grpc/client";
import { configureLogging } from "@bazaar/platform/log";
import { outsideCall } from "@bazaar/platform/call-budget";
import { eventually } from "@bazaar/testkit/eventually";
import { rpcError, startTestGrpcServer } from "@bazaar/testkit/fixtures";
import { TestScope } from "@bazaar/testkit/test-scope";
import { CatalogService } from "@bazaar/proto/bazaar/catalog/v1/catalog_pb";
import { InventoryService } from "@bazaar/proto/bazaar/inventory/v1/inventory_pb";
import * as catalogSchema from "../../services/catalog/src/db/schema.ts";

// Two real gRPC servers on the chassis: a front (InventoryService.GetStock) whose handler calls
// a back (CatalogService.GetProduct) whose handler runs a slow query on a real Postgres. The
// caller of the front gives up after 400 ms; everything below must stop with it.
const scope = new TestScope();
let database: Awaited<ReturnType<TestScope["database"]>>;
let front: GrpcClient<typeof InventoryService>;
let back: GrpcClient<typeof CatalogService>;
const seen: { backDeadline?: Date; backCancelledAt?: number; queryError?: string; detachedDeadlineMs?: number } = {};
let mode: "query" | "detached" = "query";

const productId = "00000000-0000-4000-8000-000000000001";

/** Every RPC of `service` open to anyone: the test calls two of them without tokens. */
function publicAccess<S extends DescService>(service: S): ServiceAccess<S> {
  return Object.fromEntries(service.methods.map((m) => [m.localName, "public"])) as ServiceAccess<S>;
}

/** Every RPC of `service` answering UNIMPLEMENTED; the test overrides the one it serves. */
function unimplemented<S extends DescService>(service: S): ServiceImpl<S> {
  return Object.fromEntries(
    service.methods.map((m) => [m.localName, () => Promise.reject(new RpcError(status.UNIMPLEMENTED, `${m.name} is not part of this test`))]),
  ) as unknown as ServiceImpl<S>;
}

beforeAll(async () => {
  configureLogging("budget-test", "error");
  database = await scope.database("catalog", catalogSchema);
  const backServer = scope.add(
    await startTestGrpcServer({
      service: CatalogService,
      access: publicAccess(CatalogService),
      impl: {
        ...unimplemented(CatalogService),
        async getProduct(_req, ctx) {
          seen.backDeadline = ctx.deadline;
          ctx.signal.addEventListener("abort", () => (seen.backCancelledAt = Date.now()), { once: true });
          await database.sql`select pg_sleep(10)`.catch((err: Error) => {
            seen.queryError = err.message;
          });
          return {};
        },
      },
    }),
    (s) => s.stop(),
  );
  back = createClient(CatalogService, backServer.address, { defaultTimeoutMs: 20_000 });
  scope.defer(async () => back.close(), "closing the back client");
  const frontServer = scope.add(
    await startTestGrpcServer({
      service: InventoryService,
      access: publicAccess(InventoryService),
      impl: {
        ...unimplemented(InventoryService),
        async getStock() {
          if (mode === "detached") {
            // Work that outlives the call keeps its own default deadline.
            void outsideCall(async () => {
              const started = Date.now();
              await back.getProduct({ id: productId }, { timeoutMs: 3_000 }).catch(() => {});
              seen.detachedDeadlineMs = Date.now() - started;
            });
            return {};
          }
          await back.getProduct({ id: productId });
          return {};
        },
      },
    }),
    (s) => s.stop(),
  );
  front = frontServer.client;
}, 60_000);

afterAll(() => scope.cleanup(), 60_000);

async function runningSleeps(): Promise<number> {
  const rows = await database.sql<{ n: number }[]>`select count(*)::int as n from pg_stat_activity where query = 'select pg_sleep(10)' and state = 'active'`;
  return rows[0]!.n;
}

describe("a call's deadline reaches everything done on its behalf", () => {
  test("the downstream call gets the time left, not a fresh timeout, and its database query is cancelled when the caller gives up", async () => {
    mode = "query";
    const started = Date.now();
    const err = await rpcError(front.getStock({ productIds: [productId] }, { timeoutMs: 400 }));
    expect(err.code).toBe(status.DEADLINE_EXCEEDED);
    // The back server was told the front's deadline (400 ms), not its client's default 20 s.
    await eventually(() => seen.backDeadline, { what: "the back server to be called", timeoutMs: 5_000 });
    expect(seen.backDeadline!.getTime() - started).toBeLessThan(1_000);
    // …so it stopped at that deadline, and so did its query: Postgres ran it for well under its 10 s.
    await eventually(() => seen.queryError, { what: "the slow query to be cancelled", timeoutMs: 5_000 });
    expect(seen.queryError).toContain("canceling statement due to user request");
    expect(seen.backCancelledAt! - started).toBeLessThan(2_000);
    expect(await runningSleeps()).toBe(0);
  }, 20_000);

  test("work a handler leaves running outside the call keeps its own deadline", async () => {
    mode = "detached";
    seen.queryError = undefined;
    await front.getStock({ productIds: [productId] }, { timeoutMs: 400 });
    await eventually(() => seen.detachedDeadlineMs, { what: "the detached call to end", timeoutMs: 10_000 });
    // Ended by its own 3 s deadline, long after the 400 ms call that started it was answered.
    expect(seen.detachedDeadlineMs!).toBeGreaterThan(2_500);
  }, 20_000);
});
