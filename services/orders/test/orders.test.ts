import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fromBinary } from "@bufbuild/protobuf";
import { status } from "@grpc/grpc-js";
import { and, asc, eq } from "drizzle-orm";
import { openDatabase } from "@bazaar/platform/db";
import type { GrpcClient } from "@bazaar/platform/grpc/client";
import { configureLogging } from "@bazaar/platform/log";
import { registry } from "@bazaar/platform/metrics";
import { eventually } from "@bazaar/testkit/eventually";
import { type BearerAuth, rpcError, startTestGrpcServer, type TestGrpcServerWithIssuer } from "@bazaar/testkit/fixtures";
import { findCardData } from "@bazaar/testkit/card-data";
import { TestScope } from "@bazaar/testkit/test-scope";
import { OrderCancelledSchema, OrderConfirmedSchema, OrderPlacedSchema } from "@bazaar/proto/bazaar/events/v1/events_pb";
import { type Order, OrdersService, OrderStatus } from "@bazaar/proto/bazaar/orders/v1/orders_pb";
import * as schema from "../src/db/schema.ts";
import { OrderStore } from "../src/orders.ts";
import { ordersAccess, ordersHandlers } from "../src/rpc.ts";
import { type OrdersDatabase, SagaExecutor, type SagaExecutorOptions } from "../src/saga.ts";
import { FakePorts, gate } from "./fakes.ts";

// The orders service in-process: its handlers behind a real gRPC server, on a fresh
// database of this run's own, with its saga's peers (catalog, inventory, payments) played by
// the honest fakes of fakes.ts. test/platform.test.ts runs it against the real services.
const scope = new TestScope();
const noOutbox = { wake() {} };
const migrations = new URL("../drizzle", import.meta.url).pathname;
const fast: SagaExecutorOptions = { leaseMs: 30_000, pollMs: 50, retryBaseMs: 20, retryMaxMs: 200 };
let db: OrdersDatabase;
let ports: FakePorts;
let executor: SagaExecutor;
let store: OrderStore;
let grpc: TestGrpcServerWithIssuer<typeof OrdersService>;
let client: GrpcClient<typeof OrdersService>;
const others: SagaExecutor[] = [];

beforeAll(async () => {
  configureLogging("orders", "error");
  db = await scope.database("orders", schema);
  // A replica left "crashed" by a failed test would wait forever for its stuck port call.
  scope.defer(() => Promise.all([executor, ...others].map((e) => Promise.race([e?.stop(), Bun.sleep(2_000)]))), "stopping the saga executors");
  ports = new FakePorts();
  executor = new SagaExecutor(db, ports, noOutbox, fast).start();
  store = new OrderStore(db, ports, executor, noOutbox, { waitMs: 3_000 });
  grpc = scope.add(
    await startTestGrpcServer({
      service: OrdersService,
      impl: ordersHandlers(store, { waitMs: 3_000 }),
      access: ordersAccess,
      clientOptions: { defaultTimeoutMs: 10_000 },
    }),
    (g) => g.stop(),
  );
  client = grpc.client;
}, 60_000);

afterAll(() => scope.cleanup(), 60_000);

/** A fresh payment method token of the user's, of the test card that pays (or of the declined one), from the fake payments. */
const good = (user: { id: string }) => ports.payments.tokenize(user.id);
const declined = (user: { id: string }) => ports.payments.tokenize(user.id, "declined");
const newKey = () => `checkout-${crypto.randomUUID()}`;

async function newUser(roles = ["customer"]): Promise<{ id: string; auth: BearerAuth }> {
  const id = crypto.randomUUID();
  return { id, auth: await grpc.auth({ sub: id, roles }) };
}

/** A product of its own for a test, priced by the catalog and with `stock` units in inventory. */
function product(name: string, priceMinor: number, stock: number): string {
  const p = ports.catalog.add(name, priceMinor);
  ports.inventory.setStock(p.id, stock);
  return p.id;
}

async function finalOrder(id: string, auth: BearerAuth): Promise<Order> {
  return eventually(
    async () => {
      const { order } = await client.getOrder({ id }, auth);
      return order && order.status !== OrderStatus.PENDING ? order : undefined;
    },
    { what: `order ${id} to be final` },
  );
}

async function sagaOf(orderId: string) {
  const [row] = await db.db.select().from(schema.sagas).where(eq(schema.sagas.orderId, orderId));
  return row!;
}

/** The order's events in the outbox, in the order they were queued (each in its own transaction, so by time). */
async function eventsOf(orderId: string) {
  const rows = await db.db.select().from(schema.outbox).orderBy(asc(schema.outbox.createdAt));
  const decoded = rows.map((r) => {
    if (r.routingKey === "order.placed.v1") return { key: r.routingKey, orderId: fromBinary(OrderPlacedSchema, r.payload).orderId };
    if (r.routingKey === "order.confirmed.v1") return { key: r.routingKey, orderId: fromBinary(OrderConfirmedSchema, r.payload).orderId };
    const e = fromBinary(OrderCancelledSchema, r.payload);
    return { key: r.routingKey, orderId: e.orderId, reason: e.reason };
  });
  return decoded.filter((e) => e.orderId === orderId);
}

async function outcomeCount(outcome: string, reason: string): Promise<number> {
  const values = (await registry.getSingleMetric("bazaar_saga_outcomes_total")?.get())?.values ?? [];
  return values.filter((v) => v.labels.outcome === outcome && v.labels.reason === reason).reduce((n, v) => n + v.value, 0);
}

/** The value of a series of this process's metrics (`sample`: a histogram's `_count`, say). */
async function metricValue(name: string, labels: Record<string, string> = {}, sample = name): Promise<number> {
  const values = (await registry.getSingleMetric(name)?.get())?.values ?? [];
  return values
    .filter((v) => ((v as { metricName?: string }).metricName ?? name) === sample && Object.entries(labels).every(([k, val]) => v.labels[k] === val))
    .reduce((n, v) => n + v.value, 0);
}

const stepAttempts = (step: string, outcome: string) =>
  metricValue("bazaar_saga_step_duration_seconds", { step, outcome }, "bazaar_saga_step_duration_seconds_count");

/** Another executor on the same database and peers: a second replica, or the one that crashes. */
function replica(options: Partial<SagaExecutorOptions> = {}): { executor: SagaExecutor; store: OrderStore } {
  const e = new SagaExecutor(db, ports, noOutbox, { ...fast, ...options });
  others.push(e);
  return { executor: e, store: new OrderStore(db, ports, e, noOutbox, { waitMs: 0 }) };
}

describe("PlaceOrder", () => {
  test("a good card's token: CONFIRMED, priced by the catalog, charged once, stock sold, events queued, token wiped", async () => {
    const buyer = await newUser();
    const mug = product("Stoneware Mug", 1_250, 10);
    const kettle = product("Copper Kettle", 4_999, 3);
    const confirmedBefore = await outcomeCount("confirmed", "none");
    const placedBefore = await metricValue("bazaar_orders_placed_total");
    const stepsBefore = [await stepAttempts("reserve", "reserved"), await stepAttempts("charge", "captured"), await stepAttempts("commit", "committed")];
    const { order } = await client.placeOrder(
      {
        idempotencyKey: newKey(),
        lines: [
          { productId: mug, quantity: 2 },
          { productId: kettle, quantity: 1 },
        ],
        paymentMethodToken: good(buyer),
      },
      buyer.auth,
    );
    expect(order?.status).toBe(OrderStatus.CONFIRMED);
    expect(order?.userId).toBe(buyer.id);
    expect(order?.items.map((i) => [i.name, i.quantity, i.unitPrice?.amountMinor, i.lineTotal?.amountMinor])).toEqual([
      ["Stoneware Mug", 2, 1_250n, 2_500n],
      ["Copper Kettle", 1, 4_999n, 4_999n],
    ]);
    expect(order?.total).toMatchObject({ currencyCode: "USD", amountMinor: 7_499n });
    const payments = ports.payments.of(order!.id);
    expect(payments).toHaveLength(1);
    expect(payments[0]).toMatchObject({ id: order!.paymentId, amountMinor: 7_499, status: "CAPTURED" });
    expect(ports.inventory.onHand.get(mug)).toBe(8);
    expect(ports.inventory.available(kettle)).toBe(2);
    expect((await eventsOf(order!.id)).map((e) => e.key)).toEqual(["order.placed.v1", "order.confirmed.v1"]);
    const saga = await sagaOf(order!.id);
    expect(saga).toMatchObject({ step: "done", paymentMethodToken: null, leaseOwner: null });
    expect(await outcomeCount("confirmed", "none")).toBe(confirmedBefore + 1);
    expect(await metricValue("bazaar_orders_placed_total")).toBe(placedBefore + 1);
    expect([await stepAttempts("reserve", "reserved"), await stepAttempts("charge", "captured"), await stepAttempts("commit", "committed")]).toEqual(
      stepsBefore.map((n) => n + 1),
    );
  });

  test("a declined card: CANCELLED with the reason, reservation released, nothing captured", async () => {
    const buyer = await newUser();
    const lamp = product("Desk Lamp", 3_000, 1);
    const declinedBefore = await outcomeCount("cancelled", "payment_declined");
    const { order } = await client.placeOrder(
      { idempotencyKey: newKey(), lines: [{ productId: lamp, quantity: 1 }], paymentMethodToken: declined(buyer) },
      buyer.auth,
    );
    expect(order?.status).toBe(OrderStatus.CANCELLED);
    expect(order?.cancelReason).toBe("Your card was declined.");
    expect(order?.paymentId).toBe("");
    expect(ports.inventory.reservations.get(order!.id)?.status).toBe("released");
    expect(ports.inventory.available(lamp)).toBe(1);
    expect(ports.payments.of(order!.id).map((p) => p.status)).toEqual(["FAILED"]);
    expect(ports.count("commit", order!.id)).toBe(0);
    expect((await eventsOf(order!.id)).at(-1)).toEqual({ key: "order.cancelled.v1", orderId: order!.id, reason: "Your card was declined." });
    expect((await sagaOf(order!.id)).paymentMethodToken).toBeNull();
    expect(await outcomeCount("cancelled", "payment_declined")).toBe(declinedBefore + 1);
    // The stock is back: someone else can buy it.
    const other = await newUser();
    const { order: second } = await client.placeOrder(
      { idempotencyKey: newKey(), lines: [{ productId: lamp, quantity: 1 }], paymentMethodToken: good(other) },
      other.auth,
    );
    expect(second?.status).toBe(OrderStatus.CONFIRMED);
  });

  test("out of stock: CANCELLED naming the product, no charge attempted", async () => {
    const buyer = await newUser();
    const plenty = product("Tea Towel", 800, 50);
    const scarce = product("Walnut Cutting Board", 5_500, 1);
    const { order } = await client.placeOrder(
      {
        idempotencyKey: newKey(),
        lines: [
          { productId: plenty, quantity: 1 },
          { productId: scarce, quantity: 2 },
        ],
        paymentMethodToken: good(buyer),
      },
      buyer.auth,
    );
    expect(order?.status).toBe(OrderStatus.CANCELLED);
    expect(order?.cancelReason).toBe("Not enough stock of Walnut Cutting Board.");
    expect(ports.count("charge", order!.id)).toBe(0);
    expect(ports.inventory.available(plenty)).toBe(50);
    expect(ports.inventory.available(scarce)).toBe(1);
    expect((await sagaOf(order!.id)).paymentMethodToken).toBeNull();
  });

  test("a peer failing twice with UNAVAILABLE then working: the step is retried and the order CONFIRMED, charged once", async () => {
    const buyer = await newUser();
    const pen = product("Fountain Pen", 2_400, 5);
    ports.failNext("reserve", 2);
    ports.failNext("charge", 2, status.DEADLINE_EXCEEDED);
    const placed = await client.placeOrder({ idempotencyKey: newKey(), lines: [{ productId: pen, quantity: 1 }], paymentMethodToken: good(buyer) }, buyer.auth);
    const order = await finalOrder(placed.order!.id, buyer.auth);
    expect(order.status).toBe(OrderStatus.CONFIRMED);
    expect(ports.count("reserve", order.id)).toBe(3);
    expect(ports.count("charge", order.id)).toBe(3);
    expect(ports.payments.of(order.id)).toHaveLength(1);
    expect(ports.payments.processorCharges).toBeGreaterThan(0);
    expect(ports.inventory.onHand.get(pen)).toBe(4);
  });

  test("answers PENDING when the saga outlasts the wait, and the order is final later", async () => {
    const buyer = await newUser();
    const rug = product("Wool Rug", 12_000, 2);
    const held = gate();
    ports.hook("reserve", { before: held.wait });
    const { order } = await store
      .place(
        buyer.id,
        {
          idempotencyKey: newKey(),
          lines: [{ productId: rug, quantity: 1 }],
          paymentMethodToken: good(buyer),
        },
        100,
      )
      .then((o) => ({ order: o }));
    expect(order.status).toBe("PENDING");
    // Read from the database at scrape time: the held saga is in flight, placed a moment ago.
    expect(await metricValue("bazaar_sagas_in_flight")).toBeGreaterThanOrEqual(1);
    expect(await metricValue("bazaar_saga_oldest_in_flight_seconds")).toBeGreaterThan(0);
    held.open();
    expect((await finalOrder(order.id, buyer.auth)).status).toBe(OrderStatus.CONFIRMED);
  });

  test("the same key sent 10 times at once: one order, one saga, one charge", async () => {
    const buyer = await newUser();
    const chair = product("Oak Chair", 9_900, 5);
    const request = { idempotencyKey: newKey(), lines: [{ productId: chair, quantity: 1 }], paymentMethodToken: good(buyer) };
    const results = await Promise.all(Array.from({ length: 10 }, () => client.placeOrder(request, buyer.auth)));
    const ids = new Set(results.map((r) => r.order!.id));
    expect(ids.size).toBe(1);
    const id = [...ids][0]!;
    expect((await finalOrder(id, buyer.auth)).status).toBe(OrderStatus.CONFIRMED);
    const rows = await db.db
      .select()
      .from(schema.orders)
      .where(and(eq(schema.orders.userId, buyer.id), eq(schema.orders.idempotencyKey, request.idempotencyKey)));
    expect(rows).toHaveLength(1);
    expect(await db.db.select().from(schema.sagas).where(eq(schema.sagas.orderId, id))).toHaveLength(1);
    expect(ports.payments.of(id)).toHaveLength(1);
    expect(ports.count("charge", id)).toBe(1);
    expect(ports.count("reserve", id)).toBe(1);
    expect(ports.inventory.onHand.get(chair)).toBe(4);
    // And again later: the same order, as it is now, without another saga.
    const again = await client.placeOrder(request, buyer.auth);
    expect(again.order?.id).toBe(id);
    expect(again.order?.status).toBe(OrderStatus.CONFIRMED);
    expect(ports.count("reserve", id)).toBe(1);
  });

  test("the same key with other lines is FAILED_PRECONDITION and places nothing; with only another token (a retried checkout) it is the same order, charged once", async () => {
    const buyer = await newUser();
    const a = product("Notebook", 600, 10);
    const key = newKey();
    const { order } = await client.placeOrder({ idempotencyKey: key, lines: [{ productId: a, quantity: 1 }], paymentMethodToken: good(buyer) }, buyer.auth);
    const otherLines = await rpcError(
      client.placeOrder({ idempotencyKey: key, lines: [{ productId: a, quantity: 2 }], paymentMethodToken: good(buyer) }, buyer.auth),
    );
    expect(otherLines.code).toBe(status.FAILED_PRECONDITION);
    expect(otherLines.message).toContain("idempotency_key");
    const retried = await client.placeOrder({ idempotencyKey: key, lines: [{ productId: a, quantity: 1 }], paymentMethodToken: good(buyer) }, buyer.auth);
    expect(retried.order?.id).toBe(order!.id);
    expect(ports.payments.of(order!.id)).toHaveLength(1);
    expect(await db.db.select().from(schema.orders).where(eq(schema.orders.userId, buyer.id))).toHaveLength(1);
    // The key is the user's own: another user may use the same one.
    const other = await newUser();
    const { order: theirs } = await client.placeOrder(
      { idempotencyKey: key, lines: [{ productId: a, quantity: 2 }], paymentMethodToken: good(other) },
      other.auth,
    );
    expect(theirs?.id).not.toBe(order?.id);
  });

  test("a cart shown at $14.50 is not charged $999.99 after an admin's price change: FAILED_PRECONDITION before any order or charge", async () => {
    const buyer = await newUser();
    const id = product("Linen Apron", 1_450, 10);
    const shown = { currencyCode: "USD", amountMinor: 1_450n };
    ports.catalog.products.get(id)!.unitPriceMinor = 99_999;
    const key = newKey();
    const err = await rpcError(
      client.placeOrder({ idempotencyKey: key, lines: [{ productId: id, quantity: 1 }], paymentMethodToken: good(buyer), expectedTotal: shown }, buyer.auth),
    );
    expect(err.code).toBe(status.FAILED_PRECONDITION);
    expect(err.message).toContain("the total is now $999.99, not the $14.50 you were shown");
    expect(err.preconditions).toEqual([{ type: "PRICE", subject: "expected_total", description: "the total is now $999.99, not the $14.50 you were shown" }]);
    expect(await db.db.select().from(schema.orders).where(eq(schema.orders.userId, buyer.id))).toHaveLength(0);
    expect(ports.inventory.available(id)).toBe(10);
    // Shown the new price, the shopper may check out again with the same key.
    const { order } = await client.placeOrder(
      {
        idempotencyKey: key,
        lines: [{ productId: id, quantity: 1 }],
        paymentMethodToken: good(buyer),
        expectedTotal: { currencyCode: "USD", amountMinor: 99_999n },
      },
      buyer.auth,
    );
    expect(order?.status).toBe(OrderStatus.CONFIRMED);
    expect(ports.payments.of(order!.id).map((p) => p.amountMinor)).toEqual([99_999]);
  });

  test("an expected total in another currency, or of another amount, is refused; a matching one is not", async () => {
    const buyer = await newUser();
    const id = product("Tea Towel", 800, 10);
    const line = [{ productId: id, quantity: 2 }];
    const otherCurrency = await rpcError(
      client.placeOrder(
        { idempotencyKey: newKey(), lines: line, paymentMethodToken: good(buyer), expectedTotal: { currencyCode: "EUR", amountMinor: 1_600n } },
        buyer.auth,
      ),
    );
    expect(otherCurrency.code).toBe(status.FAILED_PRECONDITION);
    expect(otherCurrency.message).toContain("the total is now $16.00, not the €16.00 you were shown");
    const bad = await rpcError(
      client.placeOrder(
        { idempotencyKey: newKey(), lines: line, paymentMethodToken: good(buyer), expectedTotal: { currencyCode: "usd", amountMinor: -1n } },
        buyer.auth,
      ),
    );
    expect(bad.code).toBe(status.INVALID_ARGUMENT);
    expect(bad.violations.map((v) => v.field).sort()).toEqual(["expected_total.amount_minor", "expected_total.currency_code"]);
    const { order } = await client.placeOrder(
      { idempotencyKey: newKey(), lines: line, paymentMethodToken: good(buyer), expectedTotal: { currencyCode: "USD", amountMinor: 1_600n } },
      buyer.auth,
    );
    expect(order?.status).toBe(OrderStatus.CONFIRMED);
  });

  test("bad input is INVALID_ARGUMENT naming the field, and writes nothing", async () => {
    const buyer = await newUser();
    const p = product("Candle", 1_000, 5);
    const line = { productId: p, quantity: 1 };
    const base = { idempotencyKey: newKey(), lines: [line], paymentMethodToken: good(buyer) };
    const cases: [string, Parameters<typeof client.placeOrder>[0]][] = [
      ["idempotency_key", { ...base, idempotencyKey: "short" }],
      ["idempotency_key", { ...base, idempotencyKey: "x".repeat(129) }],
      ["idempotency_key", { ...base, idempotencyKey: "has spaces in it" }],
      ["lines", { ...base, lines: [] }],
      ["lines", { ...base, lines: Array.from({ length: 51 }, () => ({ productId: crypto.randomUUID(), quantity: 1 })) }],
      ["lines[0].product_id", { ...base, lines: [{ productId: "not-a-uuid", quantity: 1 }] }],
      ["lines[1].product_id", { ...base, lines: [line, { ...line, quantity: 2 }] }],
      ["lines[0].quantity", { ...base, lines: [{ productId: p, quantity: 0 }] }],
      ["lines[0].quantity", { ...base, lines: [{ productId: p, quantity: 100 }] }],
      ["payment_method_token", { ...base, paymentMethodToken: "" }],
      ["payment_method_token", { ...base, paymentMethodToken: "4242424242424242" }],
      ["payment_method_token", { ...base, paymentMethodToken: `pm_${"x".repeat(44)}` }],
      ["lines[0].product_id", { ...base, lines: [{ productId: "00000000-0000-4000-8000-000000000000", quantity: 1 }] }],
    ];
    for (const [field, request] of cases) {
      const err = await rpcError(client.placeOrder(request, buyer.auth));
      expect([field, err.code]).toEqual([field, status.INVALID_ARGUMENT]);
      expect(err.message.startsWith(`${field}: `)).toBe(true);
    }
    expect((await rpcError(client.placeOrder(cases.at(-1)![1], buyer.auth))).message).toContain("no product has id 00000000-0000-4000-8000-000000000000");
    expect(await db.db.select().from(schema.orders).where(eq(schema.orders.userId, buyer.id))).toHaveLength(0);
    expect(ports.inventory.available(p)).toBe(5);

    for (const id of ["", "42", "00000000-0000-4000-8000-00000000000g"]) {
      expect((await rpcError(client.getOrder({ id }, buyer.auth))).message).toStartWith("id: ");
      expect((await rpcError(client.cancelOrder({ id }, buyer.auth))).message).toStartWith("id: ");
    }
    for (const pageSize of [-1, 101]) {
      const err = await rpcError(client.listOrders({ pageSize }, buyer.auth));
      expect([err.code, err.message.split(":")[0]]).toEqual([status.INVALID_ARGUMENT, "page_size"]);
    }
    for (const pageToken of [
      "not a token",
      "e30",
      Buffer.from(JSON.stringify({ v: 1, l: "own", c: { createdAt: "yesterday", id: crypto.randomUUID() } })).toString("base64url"),
    ]) {
      const err = await rpcError(client.listOrders({ pageToken }, buyer.auth));
      expect([err.code, err.message.split(":")[0]]).toEqual([status.INVALID_ARGUMENT, "page_token"]);
    }
  });

  test("a card (the deprecated field) is refused with INVALID_ARGUMENT naming payment_method_token, and nothing is placed", async () => {
    const buyer = await newUser();
    const p = product("Card Wallet", 1_900, 5);
    const card = { number: "4242 4242 4242 4242", expiryMonth: 12, expiryYear: new Date().getFullYear() + 3, cvc: "0917" };
    for (const request of [
      { idempotencyKey: newKey(), lines: [{ productId: p, quantity: 1 }], card },
      { idempotencyKey: newKey(), lines: [{ productId: p, quantity: 1 }], card, paymentMethodToken: good(buyer) },
    ]) {
      const err = await rpcError(client.placeOrder(request, buyer.auth));
      expect(err.code).toBe(status.INVALID_ARGUMENT);
      expect(err.message).toBe(
        "card: is no longer accepted: orders never sees a card; tokenize it with PaymentsService.CreatePaymentMethod and send payment_method_token",
      );
      expect(err.violations.map((v) => v.field)).toEqual(["card"]);
    }
    expect(await db.db.select().from(schema.orders).where(eq(schema.orders.userId, buyer.id))).toHaveLength(0);
    expect(ports.inventory.available(p)).toBe(5);
  });

  test("a token that expired, was used, or is another user's by the charge: CANCELLED telling the shopper to check out again; stock released, nothing charged", async () => {
    const buyer = await newUser();
    const thief = await newUser();
    const p = product("Enamel Pin", 700, 10);
    const unusableBefore = await outcomeCount("cancelled", "payment_method_unusable");
    const expired = good(buyer);
    ports.payments.expire(expired);
    const spent = good(buyer);
    const { order: first } = await client.placeOrder(
      { idempotencyKey: newKey(), lines: [{ productId: p, quantity: 1 }], paymentMethodToken: spent },
      buyer.auth,
    );
    expect(first?.status).toBe(OrderStatus.CONFIRMED);
    const stolen = good(buyer);
    const charges = ports.payments.processorCharges;
    const attempts: [string, { id: string; auth: BearerAuth }][] = [
      [expired, buyer],
      [spent, buyer],
      [stolen, thief],
    ];
    for (const [paymentMethodToken, user] of attempts) {
      const { order } = await client.placeOrder({ idempotencyKey: newKey(), lines: [{ productId: p, quantity: 1 }], paymentMethodToken }, user.auth);
      expect(order?.status).toBe(OrderStatus.CANCELLED);
      expect(order?.cancelReason).toBe("Your payment details expired before the order could be paid; you have not been charged. Please check out again.");
      expect(order?.paymentId).toBe("");
      expect(ports.payments.of(order!.id)).toEqual([]);
      expect(ports.inventory.reservations.get(order!.id)?.status).toBe("released");
      expect((await sagaOf(order!.id)).paymentMethodToken).toBeNull();
    }
    expect(ports.payments.processorCharges).toBe(charges);
    expect(ports.inventory.available(p)).toBe(9);
    expect(await outcomeCount("cancelled", "payment_method_unusable")).toBe(unusableBefore + 3);
    // The stolen token is still its owner's to use.
    const { order: own } = await client.placeOrder(
      { idempotencyKey: newKey(), lines: [{ productId: p, quantity: 1 }], paymentMethodToken: stolen },
      buyer.auth,
    );
    expect(own?.status).toBe(OrderStatus.CONFIRMED);
  });

  test("without a token every RPC is UNAUTHENTICATED", async () => {
    const id = crypto.randomUUID();
    for (const call of [
      client.placeOrder({ idempotencyKey: newKey(), lines: [], paymentMethodToken: good({ id: id }) }),
      client.getOrder({ id }),
      client.listOrders({}),
      client.cancelOrder({ id }),
    ]) {
      expect((await rpcError(call)).code).toBe(status.UNAUTHENTICATED);
    }
  });
});

describe("crashes and leases", () => {
  test("crash after the charge reached payments but before it was recorded: another executor replays it, charged once", async () => {
    const buyer = await newUser();
    const vase = product("Glass Vase", 3_300, 2);
    // This replica's lease is short; it "crashes" inside the charge step: the charge takes
    // effect at payments, and the replica never hears back.
    const crashing = replica({ leaseMs: 400 });
    const dead = gate();
    ports.hook("charge", { after: dead.wait });
    const placed = await crashing.store.place(buyer.id, {
      idempotencyKey: newKey(),
      lines: [{ productId: vase, quantity: 1 }],
      paymentMethodToken: good(buyer),
    });
    await eventually(async () => ports.payments.of(placed.id).length === 1, { what: "the charge to reach payments" });
    // Leased: the other executor (polling every 50 ms) leaves it alone.
    await Bun.sleep(150);
    const leased = await sagaOf(placed.id);
    expect(leased).toMatchObject({ step: "charge", attempts: 1 });
    expect(leased.leaseOwner).not.toBeNull();
    expect(ports.count("charge", placed.id)).toBe(1);
    // Once the lease has passed, it takes over, replays the charge (same key) and goes on.
    const order = await finalOrder(placed.id, buyer.auth);
    expect(order.status).toBe(OrderStatus.CONFIRMED);
    expect(ports.count("charge", placed.id)).toBe(2);
    expect(ports.payments.of(placed.id)).toHaveLength(1);
    expect(order.paymentId).toBe(ports.payments.of(placed.id)[0]!.id);
    expect(ports.inventory.onHand.get(vase)).toBe(1);
    // The crashed replica comes back to life: its late result is fenced off by the lease.
    dead.open();
    await crashing.executor.stop();
    expect((await client.getOrder({ id: placed.id }, buyer.auth)).order?.status).toBe(OrderStatus.CONFIRMED);
    expect(await sagaOf(placed.id)).toMatchObject({ step: "done", leaseOwner: null });
    expect((await eventsOf(placed.id)).map((e) => e.key)).toEqual(["order.placed.v1", "order.confirmed.v1"]);
  });

  test("crash after the charge was recorded: the token is already wiped, and the order still ends CONFIRMED, charged once", async () => {
    const buyer = await newUser();
    const clock = product("Wall Clock", 4_100, 2);
    const crashing = replica({ leaseMs: 400 });
    const dead = gate();
    ports.hook("commit", { before: dead.wait });
    const placed = await crashing.store.place(buyer.id, {
      idempotencyKey: newKey(),
      lines: [{ productId: clock, quantity: 1 }],
      paymentMethodToken: good(buyer),
    });
    const mid = await eventually(
      async () => {
        const s = await sagaOf(placed.id);
        return s.step === "commit" ? s : undefined;
      },
      { what: "the saga to reach the commit step" },
    );
    expect(mid).toMatchObject({ paymentMethodToken: null });
    const [row] = await db.db.select().from(schema.orders).where(eq(schema.orders.id, placed.id));
    expect(row?.paymentId).toBe(ports.payments.of(placed.id)[0]!.id);
    const order = await finalOrder(placed.id, buyer.auth);
    expect(order.status).toBe(OrderStatus.CONFIRMED);
    expect(ports.payments.of(placed.id)).toHaveLength(1);
    expect(ports.count("charge", placed.id)).toBe(1);
    dead.open();
    await crashing.executor.stop();
    expect(ports.inventory.onHand.get(clock)).toBe(1);
  });

  test("a saga whose lease expired is taken over by a second executor; a leased one is not", async () => {
    // The main executor's poller would race the second executor for the expired lease.
    executor.stopPolling();
    try {
      await leaseTakeover();
    } finally {
      executor.start();
    }
  });

  async function leaseTakeover() {
    const buyer = await newUser();
    const p = product("Linen Apron", 2_000, 5);
    // The main executor holds the saga, stuck inside the reserve step.
    const stuck = gate();
    ports.hook("reserve", { before: stuck.wait });
    const placed = await store.place(
      buyer.id,
      {
        idempotencyKey: newKey(),
        lines: [{ productId: p, quantity: 1 }],
        paymentMethodToken: good(buyer),
      },
      0,
    );
    await eventually(async () => ports.count("reserve", placed.id) === 1, { what: "the reserve call" });
    const held = await sagaOf(placed.id);
    const second = replica();
    expect(await second.executor.poll()).toBe(0);
    await second.executor.runNow(placed.id);
    expect(await sagaOf(placed.id)).toMatchObject({ leaseOwner: held.leaseOwner, step: "reserve", attempts: 1 });
    expect(ports.count("reserve", placed.id)).toBe(1);
    // The lease passes (as if the holder had died): the second executor takes over and, since
    // the step may have reached inventory, replays it rather than skipping it.
    await db.db
      .update(schema.sagas)
      .set({ leaseUntil: new Date(Date.now() - 1) })
      .where(eq(schema.sagas.orderId, placed.id));
    await second.executor.runNow(placed.id);
    expect(ports.count("reserve", placed.id)).toBe(2);
    expect(await sagaOf(placed.id)).toMatchObject({ step: "done", leaseOwner: null });
    expect((await client.getOrder({ id: placed.id }, buyer.auth)).order?.status).toBe(OrderStatus.CONFIRMED);
    // The first holder's late answer changes nothing: its lease is gone, so it records nothing.
    const finished = await sagaOf(placed.id);
    stuck.open();
    await Bun.sleep(300);
    expect(await sagaOf(placed.id)).toEqual(finished);
    expect(ports.count("charge", placed.id)).toBe(1);
    expect(ports.count("release", placed.id)).toBe(0);
    expect(ports.payments.of(placed.id)).toHaveLength(1);
    expect(ports.inventory.onHand.get(p)).toBe(4);
  }

  test("a restarted instance takes back its previous run's sagas at once; another instance's stay leased", async () => {
    executor.stopPolling();
    try {
      await restartReclaim();
    } finally {
      executor.start();
    }
  });

  async function restartReclaim() {
    const buyer = await newUser();
    const p = product("Soap Dish", 900, 5);
    // Two instances, "host-a:1" and "host-a:10", each die inside a charge (a long lease each).
    const dead = gate();
    const placed: string[] = [];
    for (const instanceId of ["host-a:1", "host-a:10"]) {
      ports.hook("charge", { after: dead.wait });
      const run = replica({ instanceId });
      placed.push((await run.store.place(buyer.id, { idempotencyKey: newKey(), lines: [{ productId: p, quantity: 1 }], paymentMethodToken: good(buyer) })).id);
      await eventually(async () => ports.payments.of(placed.at(-1)!).length === 1, { what: "the charge" });
    }
    // "host-a:1" restarts: its new run takes back only its own saga and finishes it now.
    const restarted = replica({ instanceId: "host-a:1" });
    expect(await restarted.executor.reclaimFromPreviousRun()).toBe(1);
    expect((await finalOrder(placed[0]!, buyer.auth)).status).toBe(OrderStatus.CONFIRMED);
    expect(ports.payments.of(placed[0]!)).toHaveLength(1);
    const other = await sagaOf(placed[1]!);
    expect(other.step).toBe("charge");
    expect(other.leaseOwner?.startsWith("host-a:10/")).toBe(true);
    expect(other.leaseUntil!.getTime()).toBeGreaterThan(Date.now() + 10_000);
    // Nothing of its own is taken back twice.
    expect(await restarted.executor.reclaimFromPreviousRun()).toBe(0);
    dead.open();
  }

  test("two executors polling the same sagas never run the same step twice at once", async () => {
    const buyer = await newUser();
    const p = product("Bread Knife", 1_900, 20);
    const a = replica();
    const b = replica();
    const held = gate();
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) {
      ports.hook("reserve", { before: held.wait });
      // Placed through a parked replica so only a and b's polls pick them up.
      const parked = replica();
      await parked.executor.stop();
      ids.push(
        (
          await parked.store.place(
            buyer.id,
            {
              idempotencyKey: newKey(),
              lines: [{ productId: p, quantity: 1 }],
              paymentMethodToken: good(buyer),
            },
            0,
          )
        ).id,
      );
    }
    await Promise.all([a.executor.poll(), b.executor.poll(), a.executor.poll(), b.executor.poll()]);
    held.open();
    const reserveCalls = ids.map((id) => ports.count("reserve", id));
    for (const id of ids) expect((await finalOrder(id, buyer.auth)).status).toBe(OrderStatus.CONFIRMED);
    // Whichever executors (a, b, or the main one) claimed them, each step ran once.
    expect(reserveCalls.every((n) => n <= 1)).toBe(true);
    expect(ids.map((id) => ports.count("reserve", id))).toEqual(ids.map(() => 1));
    expect(ids.map((id) => ports.payments.of(id).length)).toEqual(ids.map(() => 1));
  });
});

describe("CancelOrder", () => {
  test("before the charge: CANCELLED at the user's request, reservation released, never charged", async () => {
    const buyer = await newUser();
    const p = product("Hand Plane", 7_700, 1);
    const held = gate();
    ports.hook("reserve", { after: held.wait });
    const placed = await client.placeOrder(
      { idempotencyKey: newKey(), lines: [{ productId: p, quantity: 1 }], paymentMethodToken: good(buyer) },
      { ...buyer.auth, timeoutMs: 400 },
    );
    expect(placed.order?.status).toBe(OrderStatus.PENDING);
    const cancelling = client.cancelOrder({ id: placed.order!.id }, buyer.auth);
    await eventually(async () => (await sagaOf(placed.order!.id)).cancelRequested, { what: "the cancellation to be recorded" });
    held.open();
    const { order } = await cancelling;
    expect(order?.status).toBe(OrderStatus.CANCELLED);
    expect(order?.cancelReason).toBe("You cancelled the order.");
    expect(ports.count("charge", order!.id)).toBe(0);
    expect(ports.inventory.reservations.get(order!.id)?.status).toBe("released");
    expect(ports.inventory.available(p)).toBe(1);
    expect((await sagaOf(order!.id)).paymentMethodToken).toBeNull();
  });

  test("while the charge is in flight: the charge completes, then is refunded and the stock released", async () => {
    const buyer = await newUser();
    const p = product("Brass Bell", 1_500, 3);
    const held = gate();
    ports.hook("charge", { before: held.wait });
    const placed = await client.placeOrder(
      { idempotencyKey: newKey(), lines: [{ productId: p, quantity: 1 }], paymentMethodToken: good(buyer) },
      { ...buyer.auth, timeoutMs: 400 },
    );
    const cancelling = client.cancelOrder({ id: placed.order!.id }, buyer.auth);
    await eventually(async () => (await sagaOf(placed.order!.id)).cancelRequested, { what: "the cancellation to be recorded" });
    held.open();
    const { order } = await cancelling;
    expect(order?.status).toBe(OrderStatus.CANCELLED);
    expect(ports.payments.of(order!.id).map((x) => x.status)).toEqual(["REFUNDED"]);
    expect(ports.inventory.available(p)).toBe(3);
    expect(ports.count("commit", order!.id)).toBe(0);
  });

  test("a saga waiting to retry its reserve is cancelled without retrying it: released instead", async () => {
    const buyer = await newUser();
    const p = product("Cast Iron Pan", 3_900, 3);
    const slow = replica({ retryBaseMs: 60_000, retryMaxMs: 60_000 });
    ports.failNext("reserve", 1);
    const placed = await slow.store.place(
      buyer.id,
      {
        idempotencyKey: newKey(),
        lines: [{ productId: p, quantity: 1 }],
        paymentMethodToken: good(buyer),
      },
      0,
    );
    const waiting = await eventually(
      async () => {
        const s = await sagaOf(placed.id);
        return s.lastError ? s : undefined;
      },
      { what: "the reserve to fail" },
    );
    expect(waiting).toMatchObject({ step: "reserve", attempts: 1, leaseOwner: null });
    expect(waiting.lastError).toContain("UNAVAILABLE");
    expect(waiting.nextAttemptAt.getTime()).toBeGreaterThan(Date.now() + 10_000);
    const { order } = await client.cancelOrder({ id: placed.id }, buyer.auth);
    // The failed reserve may have reached inventory, so it is released (release of nothing is fine).
    expect(order?.status).toBe(OrderStatus.CANCELLED);
    expect(ports.count("reserve", placed.id)).toBe(1);
    expect(ports.count("release", placed.id)).toBe(1);
    expect(order?.cancelReason).toBe("You cancelled the order.");
    expect(ports.count("charge", placed.id)).toBe(0);
    expect(ports.inventory.available(p)).toBe(3);
  });

  test("cancelled after a crash left the charge's outcome unknown: the charge is replayed to learn it, then refunded", async () => {
    const buyer = await newUser();
    const p = product("Camp Stove", 6_500, 2);
    const crashing = replica({ leaseMs: 400 });
    const dead = gate();
    ports.hook("charge", { after: dead.wait });
    const placed = await crashing.store.place(buyer.id, {
      idempotencyKey: newKey(),
      lines: [{ productId: p, quantity: 1 }],
      paymentMethodToken: good(buyer),
    });
    await eventually(async () => ports.payments.of(placed.id).length === 1, { what: "the charge to reach payments" });
    const { order } = await client.cancelOrder({ id: placed.id }, buyer.auth);
    expect(order?.status).toBe(OrderStatus.CANCELLED);
    expect(order?.cancelReason).toBe("You cancelled the order.");
    expect(ports.count("charge", placed.id)).toBe(2);
    expect(ports.payments.of(placed.id).map((x) => x.status)).toEqual(["REFUNDED"]);
    expect(ports.count("commit", placed.id)).toBe(0);
    expect(ports.inventory.available(p)).toBe(2);
    dead.open();
    await crashing.executor.stop();
    expect((await sagaOf(placed.id)).step).toBe("done");
  });

  test("a final order cannot be cancelled: FAILED_PRECONDITION", async () => {
    const buyer = await newUser();
    const p = product("Teapot", 2_800, 3);
    const { order: confirmed } = await client.placeOrder(
      { idempotencyKey: newKey(), lines: [{ productId: p, quantity: 1 }], paymentMethodToken: good(buyer) },
      buyer.auth,
    );
    expect(confirmed?.status).toBe(OrderStatus.CONFIRMED);
    const err = await rpcError(client.cancelOrder({ id: confirmed!.id }, buyer.auth));
    expect(err.code).toBe(status.FAILED_PRECONDITION);
    expect(err.message).toContain("already confirmed");
    const { order: cancelled } = await client.placeOrder(
      { idempotencyKey: newKey(), lines: [{ productId: p, quantity: 1 }], paymentMethodToken: declined(buyer) },
      buyer.auth,
    );
    expect((await rpcError(client.cancelOrder({ id: cancelled!.id }, buyer.auth))).code).toBe(status.FAILED_PRECONDITION);
    expect(ports.payments.of(confirmed!.id).map((x) => x.status)).toEqual(["CAPTURED"]);
  });
});

describe("compensation", () => {
  test("the reservation expired before the commit: the payment is refunded, the order CANCELLED", async () => {
    const buyer = await newUser();
    const p = product("Picnic Blanket", 4_400, 2);
    ports.hook("commit", {
      before: () => {
        const [orderId] = [...ports.inventory.reservations.keys()].filter(
          (id) => ports.inventory.reservations.get(id)?.status === "reserved" && ports.inventory.reservations.get(id)?.lines[0]?.productId === p,
        );
        ports.inventory.expire(orderId!);
      },
    });
    const { order } = await client.placeOrder(
      { idempotencyKey: newKey(), lines: [{ productId: p, quantity: 1 }], paymentMethodToken: good(buyer) },
      buyer.auth,
    );
    expect(order?.status).toBe(OrderStatus.CANCELLED);
    expect(order?.cancelReason).toContain("refunded");
    expect(ports.payments.of(order!.id).map((x) => x.status)).toEqual(["REFUNDED"]);
    expect(ports.inventory.onHand.get(p)).toBe(2);
    expect(ports.inventory.available(p)).toBe(2);
    expect(await sagaOf(order!.id)).toMatchObject({ cancelCode: "reservation_expired", step: "done" });
  });

  test("a refund that keeps failing is retried, never skipped", async () => {
    const buyer = await newUser();
    const p = product("Garden Hose", 2_600, 2);
    ports.hook("commit", {
      before: () => {
        for (const [id, r] of ports.inventory.reservations) if (r.status === "reserved" && r.lines[0]?.productId === p) ports.inventory.expire(id);
      },
    });
    ports.failNext("refund", 3, status.INTERNAL);
    const placed = await client.placeOrder({ idempotencyKey: newKey(), lines: [{ productId: p, quantity: 1 }], paymentMethodToken: good(buyer) }, buyer.auth);
    const order = await finalOrder(placed.order!.id, buyer.auth);
    expect(order.status).toBe(OrderStatus.CANCELLED);
    expect(ports.count("refund", order.id)).toBe(4);
    expect(ports.payments.of(order.id).map((x) => x.status)).toEqual(["REFUNDED"]);
  });
});

describe("reading orders", () => {
  test("user A cannot see or cancel user B's order (NOT_FOUND); an admin can read it", async () => {
    const a = await newUser();
    const b = await newUser();
    const admin = await newUser(["customer", "admin"]);
    const p = product("Bird Feeder", 1_700, 5);
    const held = gate();
    ports.hook("reserve", { before: held.wait });
    const placed = await client.placeOrder(
      { idempotencyKey: newKey(), lines: [{ productId: p, quantity: 1 }], paymentMethodToken: good(b) },
      { ...b.auth, timeoutMs: 400 },
    );
    const id = placed.order!.id;
    expect((await rpcError(client.getOrder({ id }, a.auth))).code).toBe(status.NOT_FOUND);
    expect((await rpcError(client.cancelOrder({ id }, a.auth))).code).toBe(status.NOT_FOUND);
    expect((await client.listOrders({}, a.auth)).orders.map((o) => o.id)).not.toContain(id);
    expect((await sagaOf(id)).cancelRequested).toBe(false);
    held.open();
    expect((await finalOrder(id, b.auth)).status).toBe(OrderStatus.CONFIRMED);
    expect((await client.getOrder({ id }, admin.auth)).order?.userId).toBe(b.id);
    expect((await rpcError(client.getOrder({ id: crypto.randomUUID() }, b.auth))).code).toBe(status.NOT_FOUND);
  });

  test("ListOrders pages through the caller's orders newest first, each once", async () => {
    const buyer = await newUser();
    const p = product("Postcard", 150, 100);
    const placedIds: string[] = [];
    for (let i = 0; i < 5; i++) {
      const { order } = await client.placeOrder(
        { idempotencyKey: newKey(), lines: [{ productId: p, quantity: 1 }], paymentMethodToken: good(buyer) },
        buyer.auth,
      );
      placedIds.push(order!.id);
    }
    const seen: string[] = [];
    let token = "";
    let pages = 0;
    do {
      const page = await client.listOrders({ pageSize: 2, pageToken: token }, buyer.auth);
      expect(page.orders.length).toBeLessThanOrEqual(2);
      expect(page.orders.every((o) => o.userId === buyer.id && o.items.length === 1)).toBe(true);
      seen.push(...page.orders.map((o) => o.id));
      token = page.nextPageToken;
      pages++;
    } while (token && pages < 10);
    expect(seen).toEqual([...placedIds].reverse());
    expect(pages).toBe(3);
    expect((await client.listOrders({}, buyer.auth)).orders).toHaveLength(5);
    // An admin's listing is everyone's, and a user's token is not good for it.
    const admin = await newUser(["customer", "admin"]);
    const all = await client.listOrders({ pageSize: 100 }, admin.auth);
    expect(all.orders.length).toBeGreaterThan(5);
    const mine = await client.listOrders({ pageSize: 1 }, buyer.auth);
    expect((await rpcError(client.listOrders({ pageToken: mine.nextPageToken }, admin.auth))).code).toBe(status.INVALID_ARGUMENT);
  });
});

describe("the migration that drops the card from the saga", () => {
  test("sagas still holding a card end CANCELLED telling the shopper to order again: stock released, a charge that went through refunded, nothing charged anew or left PENDING", async () => {
    // A database as main left it (migration 0000: sagas with card columns), with sagas in
    // flight, some holding a card: the state an upgrade meets.
    const url = scope.databaseUrl("orders");
    const initOnly = await mkdtemp(join(tmpdir(), "orders-0000-"));
    scope.defer(() => rm(initOnly, { recursive: true, force: true }), "removing the 0000-only migrations");
    await mkdir(join(initOnly, "meta"));
    await copyFile(join(migrations, "0000_init.sql"), join(initOnly, "0000_init.sql"));
    const journal = JSON.parse(await readFile(join(migrations, "meta/_journal.json"), "utf8")) as { entries: { tag: string }[] };
    await writeFile(join(initOnly, "meta/_journal.json"), JSON.stringify({ ...journal, entries: journal.entries.filter((e) => e.tag === "0000_init") }));
    const legacy = await openDatabase({ url, schema, migrationsFolder: initOnly });
    const buyer = await newUser();
    const p = product("Hand-Thrown Bowl", 2_000, 10);
    const card = { number: "4000000000009995", cvc: "0917" };
    const sagaStates = {
      reserving: { step: "reserve", attempts: 1 },
      chargeNotTried: { step: "charge", attempts: 0 },
      chargedBefore: { step: "charge", attempts: 1 },
      chargeLost: { step: "charge", attempts: 1 },
    } as const;
    const ids: Record<string, string> = {};
    try {
      for (const [name, state] of Object.entries(sagaStates)) {
        const [order] = await legacy.sql`insert into orders (user_id, currency, total_minor, idempotency_key, request_hash)
          values (${buyer.id}, 'USD', 2000, ${newKey()}, 'legacy') returning id`;
        const id = order!.id as string;
        ids[name] = id;
        await legacy.sql`insert into order_items (order_id, line_no, product_id, name, unit_price_minor, quantity) values (${id}, 0, ${p}, 'Hand-Thrown Bowl', 2000, 1)`;
        // A lease that has run out: its process died (or stopped) mid-saga.
        await legacy.sql`insert into sagas (order_id, step, attempts, lease_until, lease_owner, card_number, card_expiry_month, card_expiry_year, card_cvc)
          values (${id}, ${state.step}, ${state.attempts}, now() - interval '1 second', 'a-previous-run', ${card.number}, 12, 2099, ${card.cvc})`;
        ports.inventory.reserve(id, [{ productId: p, quantity: 1 }]);
      }
      // The charge of one went through before the upgrade (under the saga's key), the other's never arrived.
      const legacyToken = ports.payments.tokenize(buyer.id);
      ports.payments.charge({
        idempotencyKey: `order:${ids.chargedBefore}`,
        orderId: ids.chargedBefore!,
        userId: buyer.id,
        amountMinor: 2000,
        currency: "USD",
        paymentMethodToken: legacyToken,
      });
      // The scan finds the card in main's schema: this is what the scans elsewhere would have caught.
      const before = await findCardData((text) => legacy.sql.unsafe(text), { numbers: [card.number], cvcs: [card.cvc] });
      expect(before.hits.map((h) => `${h.table}.${h.column}`).sort()).toEqual(["sagas.card_cvc", "sagas.card_number", "sagas.card_number"]);
    } finally {
      await legacy.close();
    }

    const upgraded = await openDatabase({ url, schema, migrationsFolder: migrations });
    scope.defer(() => upgraded.close(), "closing the upgraded database");
    expect((await findCardData((text) => upgraded.sql.unsafe(text), { numbers: [card.number], cvcs: [card.cvc] })).hits).toEqual([]);
    const charges = ports.payments.processorCharges;
    const upgradedExecutor = new SagaExecutor(upgraded, ports, noOutbox, fast).start();
    others.push(upgradedExecutor);
    const reason =
      "We changed how card details are handled while your order was being processed, so it could not be completed; any payment taken has been refunded. Please place the order again.";
    const finals = await eventually(
      async () => {
        const rows = await upgraded.db.select().from(schema.orders);
        return rows.every((o) => o.status !== "PENDING") ? rows : undefined;
      },
      { what: "every upgraded order to be final", timeoutMs: 10_000 },
    );
    const byId = (a: string[], b: string[]) => (a[0]! < b[0]! ? -1 : 1);
    expect(finals.map((o) => [o.id, o.status, o.cancelReason]).sort(byId)).toEqual(
      Object.values(ids)
        .map((id) => [id, "CANCELLED", reason])
        .sort(byId),
    );
    expect(ports.payments.processorCharges).toBe(charges);
    expect(ports.payments.of(ids.chargedBefore!).map((x) => x.status)).toEqual(["REFUNDED"]);
    for (const name of ["reserving", "chargeNotTried", "chargeLost"]) expect(ports.payments.of(ids[name]!)).toEqual([]);
    for (const id of Object.values(ids)) expect(ports.inventory.reservations.get(id)?.status).toBe("released");
    expect(ports.inventory.available(p)).toBe(10);
    const sagaRows = await upgraded.db.select().from(schema.sagas);
    expect(sagaRows.map((r) => [r.step, r.cancelCode, r.paymentMethodToken])).toEqual(Object.values(ids).map(() => ["done", "card_details_discarded", null]));
    await upgradedExecutor.stop();
  });
});
