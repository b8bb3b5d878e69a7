import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { fromBinary } from "@bufbuild/protobuf";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { status } from "@grpc/grpc-js";
import { count, eq, inArray } from "drizzle-orm";
import { NotFoundError, type RpcError } from "@bazaar/platform/errors";
import type { ServiceAccess } from "@bazaar/platform/grpc/server";
import type { GrpcClient } from "@bazaar/platform/grpc/client";
import { configureLogging } from "@bazaar/platform/log";
import { registry } from "@bazaar/platform/metrics";
import { eventually } from "@bazaar/testkit/eventually";
import { type BearerAuth, rpcError, startTestGrpcServer, type TestGrpcServerWithIssuer } from "@bazaar/testkit/fixtures";
import { TestScope } from "@bazaar/testkit/test-scope";
import { StockChangedSchema } from "@bazaar/proto/bazaar/events/v1/events_pb";
import { InventoryService, ReservationStatus } from "@bazaar/proto/bazaar/inventory/v1/inventory_pb";
import { CatalogService } from "@bazaar/proto/bazaar/catalog/v1/catalog_pb";
import { CatalogBackfill } from "../src/catalog-backfill.ts";
import * as schema from "../src/db/schema.ts";
import { demoQuantity } from "../src/demo-stock.ts";
import { type InventoryDatabase, InventoryStore } from "../src/inventory-store.ts";
import { ReservationSweeper } from "../src/reservation-sweeper.ts";
import { inventoryAccess, inventoryHandlers } from "../src/rpc.ts";

// The inventory's handlers behind a real gRPC server and client, on a fresh database of this
// test run's own; tokens come from a test issuer.
const scope = new TestScope();
let db: InventoryDatabase;
let store: InventoryStore;
let grpc: TestGrpcServerWithIssuer<typeof InventoryService>;
let client: GrpcClient<typeof InventoryService>;
let asService: BearerAuth;
let asAdmin: BearerAuth;
let asCustomer: BearerAuth;
const adminId = crypto.randomUUID();
/** The products the stand-in catalog has. */
const catalogProducts = new Set<string>();

beforeAll(async () => {
  configureLogging("inventory", "warn");
  db = await scope.database("inventory", schema);
  store = new InventoryStore(db, { reservationTtlSeconds: 900 });
  // A stand-in catalog that knows the products in catalogProducts and answers GetProduct only.
  const getProduct = async (req: { id: string }) => {
    if (!catalogProducts.has(req.id)) throw new NotFoundError(`no product has id ${req.id}`);
    return { product: { id: req.id, name: "Stand-in" } };
  };
  const unused = async () => {
    throw new Error("not served by this stand-in");
  };
  const catalogImpl = { getProduct, listProducts: unused, batchGetProducts: unused, listCategories: unused, createProduct: unused, updateProduct: unused };
  const catalogAccess = Object.fromEntries(Object.keys(catalogImpl).map((rpc) => [rpc, "public"])) as ServiceAccess<typeof CatalogService>;
  const catalog = scope.add(await startTestGrpcServer({ service: CatalogService, impl: catalogImpl, access: catalogAccess }), (g) => g.stop());
  const products = new CatalogBackfill(catalog.client, db, store, { wake() {} });
  grpc = scope.add(await startTestGrpcServer({ service: InventoryService, impl: inventoryHandlers(store, products), access: inventoryAccess }), (g) =>
    g.stop(),
  );
  client = grpc.client;
  asService = await grpc.auth({ sub: "service:orders", roles: ["service"] });
  asAdmin = await grpc.auth({ sub: adminId, roles: ["customer", "admin"] });
  asCustomer = await grpc.auth({ sub: crypto.randomUUID(), roles: ["customer"] });
}, 60_000);

afterAll(() => scope.cleanup(), 60_000);

/** A product with a stock row of `onHand` units. */
async function product(onHand: number): Promise<string> {
  const productId = crypto.randomUUID();
  await db.db.insert(schema.stock).values({ productId, onHand });
  return productId;
}

async function level(productId: string) {
  const { levels } = await client.getStock({ productIds: [productId] });
  const [l] = levels;
  return { onHand: l!.onHand, reserved: l!.reserved, available: l!.available };
}

/** ReserveStock for an order, as the orders service does it; each line is [product id, quantity]. */
function reserve(orderId: string, ...lines: [productId: string, quantity: number][]) {
  return client.reserveStock({ orderId, items: lines.map(([productId, quantity]) => ({ productId, quantity })) }, asService);
}

/** StockChanged events in the outbox, decoded, for the given products. */
async function stockEvents(productIds: string[]) {
  const rows = await db.db.select().from(schema.outbox).where(eq(schema.outbox.routingKey, "stock.changed.v1")).orderBy(schema.outbox.createdAt);
  return rows.map((r) => fromBinary(StockChangedSchema, r.payload)).filter((e) => productIds.includes(e.productId));
}

/** The reservations metric's count for an outcome. */
async function reservationCount(outcome: string): Promise<number> {
  const values = (await registry.getSingleMetric("bazaar_inventory_reservations_total")?.get())?.values ?? [];
  return values.filter((v) => v.labels.outcome === outcome).reduce((n, v) => n + v.value, 0);
}

/** Everything a request could change, to check that a refused one changed nothing. */
async function everything() {
  const [stock, reservations, items, adjustments, outbox] = await Promise.all([
    db.db.select().from(schema.stock).orderBy(schema.stock.productId),
    db.db.select().from(schema.reservations).orderBy(schema.reservations.orderId),
    db.db.select({ n: count() }).from(schema.reservationItems),
    db.db.select({ n: count() }).from(schema.stockAdjustments),
    db.db.select({ n: count() }).from(schema.outbox),
  ]);
  return { stock, reservations, items, adjustments, outbox };
}

describe("GetStock", () => {
  test("answers anyone with levels in the order asked, products without stock as zeros", async () => {
    const a = await product(7);
    const b = await product(3);
    const ghost = crypto.randomUUID();
    await reserve(crypto.randomUUID(), [b, 2]);
    const { levels } = await client.getStock({ productIds: [b, ghost, a.toUpperCase()] });
    expect(levels.map((l) => [l.productId, l.onHand, l.reserved, l.available])).toEqual([
      [b, 3, 2, 1],
      [ghost, 0, 0, 0],
      [a, 7, 0, 7],
    ]);
  });

  test("no ids, more than 100, or a malformed id is INVALID_ARGUMENT naming the field", async () => {
    const none = await rpcError(client.getStock({ productIds: [] }));
    expect(none.code).toBe(status.INVALID_ARGUMENT);
    expect(none.message).toContain("product_ids");
    const many = await rpcError(client.getStock({ productIds: Array.from({ length: 101 }, () => crypto.randomUUID()) }));
    expect(many.code).toBe(status.INVALID_ARGUMENT);
    expect(many.message).toContain("at most 100");
    const bad = await rpcError(client.getStock({ productIds: [crypto.randomUUID(), "1; drop table stock"] }));
    expect(bad.code).toBe(status.INVALID_ARGUMENT);
    expect(bad.message).toContain("product_ids[1]");
  });
});

describe("reserve, commit and release", () => {
  test("a reservation holds stock, and committing it takes the units off on hand", async () => {
    const [a, b] = [await product(10), await product(5)];
    const orderId = crypto.randomUUID();
    const before = Date.now();
    const { reservation } = await reserve(orderId, [a, 3], [b, 5]);
    expect(reservation?.orderId).toBe(orderId);
    expect(reservation?.status).toBe(ReservationStatus.RESERVED);
    expect(new Set(reservation?.items.map((i) => `${i.productId}×${i.quantity}`))).toEqual(new Set([`${a}×3`, `${b}×5`]));
    const expires = timestampDate(reservation!.expireTime!).getTime();
    expect(expires).toBeGreaterThan(before + 890_000);
    expect(expires).toBeLessThan(Date.now() + 910_000);
    expect(await level(a)).toEqual({ onHand: 10, reserved: 3, available: 7 });
    expect(await level(b)).toEqual({ onHand: 5, reserved: 5, available: 0 });

    const { reservation: committed } = await client.commitReservation({ orderId }, asService);
    expect(committed?.status).toBe(ReservationStatus.COMMITTED);
    expect(await level(a)).toEqual({ onHand: 7, reserved: 0, available: 7 });
    expect(await level(b)).toEqual({ onHand: 0, reserved: 0, available: 0 });
  });

  test("releasing a reservation gives its units back", async () => {
    const a = await product(4);
    const orderId = crypto.randomUUID();
    await reserve(orderId, [a, 4]);
    expect(await level(a)).toEqual({ onHand: 4, reserved: 4, available: 0 });
    const { reservation } = await client.releaseReservation({ orderId }, asService);
    expect(reservation?.status).toBe(ReservationStatus.RELEASED);
    expect(reservation?.items).toHaveLength(1);
    expect(await level(a)).toEqual({ onHand: 4, reserved: 0, available: 4 });
  });

  test("every change publishes one StockChanged per product through the outbox, with the new levels", async () => {
    const [a, b] = [await product(10), await product(5)];
    const orderId = crypto.randomUUID();
    await reserve(orderId, [a, 3], [b, 1]);
    const reserved = await stockEvents([a, b]);
    expect(reserved.map((e) => [e.productId, e.onHand, e.reserved, e.available]).sort()).toEqual(
      [
        [a, 10, 3, 7],
        [b, 5, 1, 4],
      ].sort(),
    );
    await client.commitReservation({ orderId }, asService);
    const all = await stockEvents([a, b]);
    expect(all).toHaveLength(4);
    expect(all.filter((e) => e.productId === a).at(-1)).toMatchObject({ onHand: 7, reserved: 0, available: 7 });
    expect(all.every((e) => e.occurTime !== undefined)).toBe(true);
    // Each change is the row's next version, and GetStock answers the latest.
    expect(all.filter((e) => e.productId === a).map((e) => e.version)).toEqual([2n, 3n]);
    expect((await client.getStock({ productIds: [a] })).levels[0]?.version).toBe(3n);
    // Repeating a call changes nothing, so it publishes nothing.
    await client.commitReservation({ orderId }, asService);
    await reserve(orderId, [a, 3], [b, 1]);
    expect(await stockEvents([a, b])).toHaveLength(4);
  });

  test("not enough of one line is FAILED_PRECONDITION naming it, and no line is held", async () => {
    const [a, b] = [await product(10), await product(1)];
    const orderId = crypto.randomUUID();
    const before = await everything();
    const err = await rpcError(reserve(orderId, [a, 3], [b, 2]));
    expect(err.code).toBe(status.FAILED_PRECONDITION);
    expect(err.message).toBe(`not enough stock of ${b}: 1 available, 2 asked`);
    // The short product travels as data (google.rpc.PreconditionFailure), for the saga to read.
    expect(err.preconditions).toEqual([{ type: "STOCK", subject: b, description: `not enough stock of ${b}: 1 available, 2 asked` }]);
    expect(await everything()).toEqual(before);
    expect(await level(a)).toEqual({ onHand: 10, reserved: 0, available: 10 });
    // Nothing is left of the failed attempt: the same order can reserve what there is.
    expect((await rpcError(client.commitReservation({ orderId }, asService))).code).toBe(status.NOT_FOUND);
    const { reservation } = await reserve(orderId, [a, 3], [b, 1]);
    expect(reservation?.status).toBe(ReservationStatus.RESERVED);
  });

  test("a product without a stock row has none to reserve: FAILED_PRECONDITION, 0 available", async () => {
    const ghost = crypto.randomUUID();
    const err = await rpcError(reserve(crypto.randomUUID(), [ghost, 1]));
    expect(err.code).toBe(status.FAILED_PRECONDITION);
    expect(err.message).toBe(`not enough stock of ${ghost}: 0 available, 1 asked`);
  });
});

describe("idempotency by order id", () => {
  test("reserving again with the same lines, in any order, returns the reservation without holding more", async () => {
    const [a, b] = [await product(10), await product(10)];
    const orderId = crypto.randomUUID();
    const first = await reserve(orderId, [a, 2], [b, 1]);
    const again = await client.reserveStock(
      {
        orderId: orderId.toUpperCase(),
        items: [
          { productId: b, quantity: 1 },
          { productId: a.toUpperCase(), quantity: 2 },
        ],
      },
      asService,
    );
    expect(again.reservation).toEqual(first.reservation!);
    expect(await level(a)).toEqual({ onHand: 10, reserved: 2, available: 8 });
    // Whatever its status: a committed reservation is returned as committed.
    await client.commitReservation({ orderId }, asService);
    const afterCommit = await reserve(orderId, [a, 2], [b, 1]);
    expect(afterCommit.reservation?.status).toBe(ReservationStatus.COMMITTED);
    expect(await level(a)).toEqual({ onHand: 8, reserved: 0, available: 8 });
  });

  test("the same order with other lines is FAILED_PRECONDITION and changes nothing", async () => {
    const [a, b] = [await product(10), await product(10)];
    const orderId = crypto.randomUUID();
    await reserve(orderId, [a, 2]);
    const before = await everything();
    for (const items of [
      [{ productId: a, quantity: 3 }],
      [{ productId: b, quantity: 2 }],
      [
        { productId: a, quantity: 2 },
        { productId: b, quantity: 1 },
      ],
    ]) {
      const err = await rpcError(client.reserveStock({ orderId, items }, asService));
      expect(err.code).toBe(status.FAILED_PRECONDITION);
      expect(err.message).toBe(`order ${orderId} already has a different reservation`);
    }
    expect(await everything()).toEqual(before);
  });

  test("committing twice gives the same answer and takes the stock once", async () => {
    const a = await product(5);
    const orderId = crypto.randomUUID();
    await reserve(orderId, [a, 2]);
    const first = await client.commitReservation({ orderId }, asService);
    const second = await client.commitReservation({ orderId }, asService);
    expect(second.reservation).toEqual(first.reservation!);
    expect(await level(a)).toEqual({ onHand: 3, reserved: 0, available: 3 });
  });

  test("releasing twice gives the same answer and returns the stock once; an unknown order releases nothing", async () => {
    const a = await product(5);
    const orderId = crypto.randomUUID();
    await reserve(orderId, [a, 2]);
    const first = await client.releaseReservation({ orderId }, asService);
    const second = await client.releaseReservation({ orderId }, asService);
    expect(second.reservation).toEqual(first.reservation!);
    expect(second.reservation?.status).toBe(ReservationStatus.RELEASED);
    expect(await level(a)).toEqual({ onHand: 5, reserved: 0, available: 5 });
    const before = await everything();
    const none = await client.releaseReservation({ orderId: crypto.randomUUID() }, asService);
    expect(none.reservation).toBeUndefined();
    expect(await everything()).toEqual(before);
  });

  test("a released reservation cannot be committed, a committed one cannot be released, an unknown one is NOT_FOUND", async () => {
    const a = await product(5);
    const released = crypto.randomUUID();
    await reserve(released, [a, 1]);
    await client.releaseReservation({ orderId: released }, asService);
    const notCommitted = await rpcError(client.commitReservation({ orderId: released }, asService));
    expect(notCommitted.code).toBe(status.FAILED_PRECONDITION);
    expect(notCommitted.message).toContain("released");

    const committed = crypto.randomUUID();
    await reserve(committed, [a, 1]);
    await client.commitReservation({ orderId: committed }, asService);
    const notReleased = await rpcError(client.releaseReservation({ orderId: committed }, asService));
    expect(notReleased.code).toBe(status.FAILED_PRECONDITION);
    expect(notReleased.message).toContain("committed");
    expect(await level(a)).toEqual({ onHand: 4, reserved: 0, available: 4 });

    const ghost = crypto.randomUUID();
    const missing = await rpcError(client.commitReservation({ orderId: ghost }, asService));
    expect(missing.code).toBe(status.NOT_FOUND);
    expect(missing.message).toContain(ghost);
  });
});

describe("concurrency", () => {
  test("racing for the last units, 30 rounds: exactly as many orders as there are units get one, never more", async () => {
    const refusedBefore = await reservationCount("out_of_stock");
    let refused = 0;
    for (let round = 0; round < 30; round++) {
      const units = 1 + (round % 3);
      const buyers = 2 + (round % 4);
      const p = await product(units);
      const results = await Promise.allSettled(Array.from({ length: buyers }, () => reserve(crypto.randomUUID(), [p, 1])));
      const won = results.filter((r) => r.status === "fulfilled").length;
      const lost = results.flatMap((r) => (r.status === "rejected" ? [r.reason as RpcError] : []));
      expect(won).toBe(Math.min(units, buyers));
      expect(lost.every((e) => e.code === status.FAILED_PRECONDITION && e.message.includes(`not enough stock of ${p}`))).toBe(true);
      const now = await level(p);
      expect(now).toEqual({ onHand: units, reserved: won, available: units - won });
      const held = await db.db.select({ n: count() }).from(schema.reservationItems).where(eq(schema.reservationItems.productId, p));
      expect(held[0]?.n).toBe(won);
      refused += lost.length;
    }
    expect(await reservationCount("out_of_stock")).toBe(refusedBefore + refused);
  }, 30_000);

  test("reservations naming the same products in opposite orders run at once without deadlocking", async () => {
    const [a, b, c] = [await product(100), await product(100), await product(100)];
    const orders = [
      [a, b, c],
      [c, b, a],
      [b, a, c],
      [c, a, b],
      [a, c, b],
      [b, c, a],
    ];
    const results = await Promise.all(
      [...orders, ...orders].map((ids) =>
        client.reserveStock({ orderId: crypto.randomUUID(), items: ids.map((productId) => ({ productId, quantity: 2 })) }, asService),
      ),
    );
    expect(results).toHaveLength(12);
    for (const p of [a, b, c]) expect(await level(p)).toEqual({ onHand: 100, reserved: 24, available: 76 });
  });

  test("the same ReserveStock sent 6 times at once makes one reservation and holds the stock once", async () => {
    const a = await product(10);
    const orderId = crypto.randomUUID();
    const request = { orderId, items: [{ productId: a, quantity: 3 }] };
    const results = await Promise.all(Array.from({ length: 6 }, () => client.reserveStock(request, asService)));
    expect(new Set(results.map((r) => JSON.stringify(r.reservation?.items)))).toHaveProperty("size", 1);
    expect(results.every((r) => r.reservation?.status === ReservationStatus.RESERVED)).toBe(true);
    expect(await level(a)).toEqual({ onHand: 10, reserved: 3, available: 7 });
    const rows = await db.db.select().from(schema.reservations).where(eq(schema.reservations.orderId, orderId));
    expect(rows).toHaveLength(1);
  });
});

describe("expiry", () => {
  const shortLived = () => new InventoryStore(db, { reservationTtlSeconds: 0.05 });

  test("the sweeper gives back the stock of a reservation nobody committed and marks it EXPIRED", async () => {
    const a = await product(3);
    const orderId = crypto.randomUUID();
    await shortLived().reserve(orderId, [{ productId: a, quantity: 2 }]);
    expect(await level(a)).toEqual({ onHand: 3, reserved: 2, available: 1 });
    const sweeper = new ReservationSweeper(store, 20).start();
    try {
      await eventually(async () => (await level(a)).reserved === 0, { what: "the sweeper to expire the reservation", timeoutMs: 3_000 });
    } finally {
      await sweeper.stop();
    }
    expect(await level(a)).toEqual({ onHand: 3, reserved: 0, available: 3 });
    const [row] = await db.db.select().from(schema.reservations).where(eq(schema.reservations.orderId, orderId));
    expect(row?.status).toBe("EXPIRED");
    // An expired reservation cannot be sold; releasing or reserving it again returns it as it is.
    const err = await rpcError(client.commitReservation({ orderId }, asService));
    expect(err.code).toBe(status.FAILED_PRECONDITION);
    expect(err.message).toContain("expired");
    expect((await client.releaseReservation({ orderId }, asService)).reservation?.status).toBe(ReservationStatus.EXPIRED);
    const again = await reserve(orderId, [a, 2]);
    expect(again.reservation?.status).toBe(ReservationStatus.EXPIRED);
    expect(await level(a)).toEqual({ onHand: 3, reserved: 0, available: 3 });
  });

  test("a reservation past its expiry that no sweep reached yet still holds its stock and commits", async () => {
    const a = await product(3);
    const orderId = crypto.randomUUID();
    await shortLived().reserve(orderId, [{ productId: a, quantity: 1 }]);
    await Bun.sleep(100);
    expect((await client.commitReservation({ orderId }, asService)).reservation?.status).toBe(ReservationStatus.COMMITTED);
    expect(await store.expireDue()).toBe(0);
    expect(await level(a)).toEqual({ onHand: 2, reserved: 0, available: 2 });
  });

  test("two sweepers at once expire each reservation exactly once", async () => {
    const [a, b] = [await product(50), await product(50)];
    const orderIds = Array.from({ length: 20 }, () => crypto.randomUUID());
    const short = shortLived();
    for (const [i, orderId] of orderIds.entries()) {
      await short.reserve(orderId, [{ productId: a, quantity: 1 }, ...(i % 2 ? [{ productId: b, quantity: 2 }] : [])]);
    }
    await Bun.sleep(100);
    const other = new InventoryStore(db, { reservationTtlSeconds: 900 });
    const counts = await Promise.all([store.expireDue(3), other.expireDue(3), store.expireDue(3), other.expireDue(3)]);
    let total = counts.reduce((n, c) => n + c, 0);
    while (total < orderIds.length) {
      const more = await Promise.all([store.expireDue(5), other.expireDue(5)]);
      if (more[0] + more[1] === 0) break;
      total += more[0] + more[1];
    }
    expect(total).toBe(20);
    expect(await level(a)).toEqual({ onHand: 50, reserved: 0, available: 50 });
    expect(await level(b)).toEqual({ onHand: 50, reserved: 0, available: 50 });
    const rows = await db.db.select().from(schema.reservations).where(inArray(schema.reservations.orderId, orderIds));
    expect(rows.every((r) => r.status === "EXPIRED")).toBe(true);
  });

  test("a stopped sweeper sweeps no more", async () => {
    const sweeper = new ReservationSweeper(store, 10).start();
    await sweeper.stop();
    const a = await product(1);
    await shortLived().reserve(crypto.randomUUID(), [{ productId: a, quantity: 1 }]);
    await Bun.sleep(120);
    expect(await sweeper.sweep()).toBe(0);
    expect((await level(a)).reserved).toBe(1);
    await store.expireDue();
  });
});

describe("AdjustStock", () => {
  test("an admin adds and removes units; each change is audited with the admin as actor and published", async () => {
    const a = await product(2);
    const { level: added } = await client.adjustStock({ productId: a, delta: 10, reason: "  delivery 2026-11-20 " }, asAdmin);
    expect(added).toMatchObject({ productId: a, onHand: 12, reserved: 0, available: 12 });
    const { level: removed } = await client.adjustStock({ productId: a, delta: -5, reason: "damaged in storage" }, asAdmin);
    expect(removed).toMatchObject({ onHand: 7, available: 7 });
    const audit = await db.db.select().from(schema.stockAdjustments).where(eq(schema.stockAdjustments.productId, a)).orderBy(schema.stockAdjustments.createdAt);
    expect(audit.map((r) => [r.delta, r.reason, r.actor, r.onHandAfter])).toEqual([
      [10, "delivery 2026-11-20", adminId, 12],
      [-5, "damaged in storage", adminId, 7],
    ]);
    expect((await stockEvents([a])).map((e) => e.onHand)).toEqual([12, 7]);
  });

  test("on hand cannot drop below what is reserved: FAILED_PRECONDITION saying how much can go", async () => {
    const a = await product(5);
    await reserve(crypto.randomUUID(), [a, 3]);
    const before = await everything();
    const err = await rpcError(client.adjustStock({ productId: a, delta: -3, reason: "recount" }, asAdmin));
    expect(err.code).toBe(status.FAILED_PRECONDITION);
    expect(err.message).toContain("at most 2 can be removed");
    expect(await everything()).toEqual(before);
    expect((await client.adjustStock({ productId: a, delta: -2, reason: "recount" }, asAdmin)).level).toMatchObject({ onHand: 3, reserved: 3, available: 0 });
  });

  test("stock for a product that does not exist (a made-up id) is NOT_FOUND and creates nothing, adding or removing", async () => {
    const ghost = crypto.randomUUID();
    const before = await everything();
    for (const delta of [4, -1]) {
      const err = await rpcError(client.adjustStock({ productId: ghost, delta, reason: "first delivery" }, asAdmin));
      expect(err.code).toBe(status.NOT_FOUND);
      expect(err.message).toBe(`the catalog has no product ${ghost}: create the product first, then stock it`);
    }
    expect(await everything()).toEqual(before);
    expect(await store.hasProduct(ghost)).toBe(false);
  });

  test("a product just created in the catalog, its ProductUpdated not yet arrived, can be stocked at once", async () => {
    const fresh = crypto.randomUUID();
    catalogProducts.add(fresh);
    expect((await client.adjustStock({ productId: fresh, delta: 4, reason: "first delivery" }, asAdmin)).level).toMatchObject({ onHand: 4, available: 4 });
    expect(await level(fresh)).toEqual({ onHand: 4, reserved: 0, available: 4 });
    // The announcement arriving afterwards finds the row and leaves it alone.
    await db.db.transaction((tx) => store.addProducts(tx, [fresh]));
    expect(await level(fresh)).toEqual({ onHand: 4, reserved: 0, available: 4 });
  });

  test("is for admins only: a customer or a service is PERMISSION_DENIED, no token UNAUTHENTICATED; nothing changes", async () => {
    const a = await product(5);
    const before = await everything();
    const request = { productId: a, delta: 100, reason: "free stuff" };
    const customer = await rpcError(client.adjustStock(request, asCustomer));
    expect(customer.code).toBe(status.PERMISSION_DENIED);
    expect(customer.message).toContain("admin");
    expect((await rpcError(client.adjustStock(request, asService))).code).toBe(status.PERMISSION_DENIED);
    expect((await rpcError(client.adjustStock(request))).code).toBe(status.UNAUTHENTICATED);
    expect(await everything()).toEqual(before);
  });

  test("a bad product id, delta or reason is INVALID_ARGUMENT naming the field; nothing changes", async () => {
    const a = await product(5);
    const before = await everything();
    const cases: [object, string][] = [
      [{ productId: "", delta: 1, reason: "x" }, "product_id"],
      [{ productId: "nope", delta: 1, reason: "x" }, "product_id"],
      [{ productId: a, delta: 0, reason: "x" }, "delta"],
      [{ productId: a, delta: 1_000_001, reason: "x" }, "delta"],
      [{ productId: a, delta: -1_000_001, reason: "x" }, "delta"],
      [{ productId: a, delta: 1, reason: "" }, "reason"],
      [{ productId: a, delta: 1, reason: "   " }, "reason"],
      [{ productId: a, delta: 1, reason: "x".repeat(201) }, "reason"],
    ];
    for (const [request, field] of cases) {
      const err = await rpcError(client.adjustStock(request, asAdmin));
      expect(err.code).toBe(status.INVALID_ARGUMENT);
      expect(err.message.startsWith(`${field}:`)).toBe(true);
    }
    expect((await client.adjustStock({ productId: a, delta: 1, reason: "x".repeat(200) }, asAdmin)).level?.onHand).toBe(6);
    const after = await everything();
    expect(after.adjustments[0]!.n).toBe(before.adjustments[0]!.n + 1);
  });
});

describe("access to reservations", () => {
  test("only services reserve, commit and release: customers and admins are PERMISSION_DENIED, anonymous callers UNAUTHENTICATED", async () => {
    const a = await product(5);
    const orderId = crypto.randomUUID();
    const before = await everything();
    const calls = [
      (auth?: BearerAuth) => client.reserveStock({ orderId, items: [{ productId: a, quantity: 1 }] }, auth),
      (auth?: BearerAuth) => client.commitReservation({ orderId }, auth),
      (auth?: BearerAuth) => client.releaseReservation({ orderId }, auth),
    ];
    for (const call of calls) {
      expect((await rpcError(call(asCustomer))).code).toBe(status.PERMISSION_DENIED);
      expect((await rpcError(call(asAdmin))).code).toBe(status.PERMISSION_DENIED);
      expect((await rpcError(call())).code).toBe(status.UNAUTHENTICATED);
    }
    expect(await everything()).toEqual(before);
  });
});

describe("input validation", () => {
  test("a bad ReserveStock is INVALID_ARGUMENT naming the field, and holds nothing", async () => {
    const a = await product(5);
    const b = await product(5);
    const orderId = crypto.randomUUID();
    const line = { productId: a, quantity: 1 };
    const before = await everything();
    const cases: [object, string][] = [
      [{ orderId: "", items: [line] }, "order_id"],
      [{ orderId: "order-1", items: [line] }, "order_id"],
      [{ orderId, items: [] }, "items"],
      [{ orderId, items: Array.from({ length: 101 }, () => ({ productId: crypto.randomUUID(), quantity: 1 })) }, "items"],
      [{ orderId, items: [line, { productId: "", quantity: 1 }] }, "items[1].product_id"],
      [{ orderId, items: [line, { productId: "b", quantity: 1 }] }, "items[1].product_id"],
      [{ orderId, items: [{ productId: a, quantity: 0 }] }, "items[0].quantity"],
      [{ orderId, items: [{ productId: a, quantity: -2 }] }, "items[0].quantity"],
      [
        {
          orderId,
          items: [
            { productId: b, quantity: 1 },
            { productId: a, quantity: 1001 },
          ],
        },
        "items[1].quantity",
      ],
      [{ orderId, items: [line, { productId: b, quantity: 1 }, { productId: a.toUpperCase(), quantity: 2 }] }, "items[2].product_id"],
    ];
    for (const [request, field] of cases) {
      const err = await rpcError(client.reserveStock(request, asService));
      expect(err.code).toBe(status.INVALID_ARGUMENT);
      expect(err.message.startsWith(`${field}:`)).toBe(true);
    }
    expect(await everything()).toEqual(before);
  });

  test("a missing or malformed order id in CommitReservation or ReleaseReservation is INVALID_ARGUMENT naming order_id", async () => {
    for (const orderId of ["", "42", "00000000-0000-4000-8000-00000000000g"]) {
      for (const call of [client.commitReservation, client.releaseReservation]) {
        const err = await rpcError(call({ orderId }, asService));
        expect(err.code).toBe(status.INVALID_ARGUMENT);
        expect(err.message.startsWith("order_id:")).toBe(true);
      }
    }
  });
});

describe("new products", () => {
  test("get a stock row once, with no units, or with the demo quantity when seeding", async () => {
    const plain = new InventoryStore(db, { reservationTtlSeconds: 900 });
    const demo = new InventoryStore(db, { reservationTtlSeconds: 900, demoStock: true });
    const [p, q] = [crypto.randomUUID(), crypto.randomUUID()];
    expect(await db.db.transaction((tx) => plain.addProducts(tx, [p]))).toHaveLength(1);
    expect(await db.db.transaction((tx) => demo.addProducts(tx, [q, p]))).toHaveLength(1);
    expect(await db.db.transaction((tx) => demo.addProducts(tx, [q]))).toHaveLength(0);
    expect(await level(p)).toEqual({ onHand: 0, reserved: 0, available: 0 });
    expect((await level(q)).onHand).toBe(demoQuantity(q));
    expect((await stockEvents([p, q])).map((e) => e.productId).sort()).toEqual([p, q].sort());
  });
});
