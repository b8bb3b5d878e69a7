import { eventually } from "@bazaar/testkit/eventually";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import postgres from "postgres";
import { RpcError } from "@bazaar/platform/errors";
import { configureLogging } from "@bazaar/platform/log";
import { createClient, type GrpcClient } from "@bazaar/platform/grpc/client";
import { type BearerAuth, bearer, freePort, launchProcess, type LaunchedProcess, testDatabaseUrl, testVhost, uniqueName } from "@bazaar/testkit/fixtures";
import { CatalogService } from "@bazaar/proto/bazaar/catalog/v1/catalog_pb";
import { IdentityService } from "@bazaar/proto/bazaar/identity/v1/identity_pb";
import { InventoryService } from "@bazaar/proto/bazaar/inventory/v1/inventory_pb";
import { type Order, OrdersService, OrderStatus } from "@bazaar/proto/bazaar/orders/v1/orders_pb";
import { PaymentsService, PaymentStatus } from "@bazaar/proto/bazaar/payments/v1/payments_pb";

// Orders against the real identity, catalog, inventory and payments processes (and a real
// orders process, so that it can be killed): every one with its own database, on free
// ports, sharing one RabbitMQ vhost of this run's own.
const secret = `orders-test-${crypto.randomUUID()}`;
const goodCard = { number: "4242 4242 4242 4242", expiryMonth: 12, expiryYear: new Date().getFullYear() + 3, cvc: "123" };
const declinedCard = { ...goodCard, number: "4000 0000 0000 0002" };

let vhost: Awaited<ReturnType<typeof testVhost>>;
const processes: LaunchedProcess[] = [];
let orders: LaunchedProcess | undefined;
const ordersDatabase = testDatabaseUrl("orders");
const paymentsDatabase = testDatabaseUrl("payments");
const ordersPorts = { GRPC_PORT: String(freePort()), HTTP_PORT: String(freePort()) };
let ordersEnv: Record<string, string>;
let paymentsSql: postgres.Sql;
let ordersSql: postgres.Sql;
let clients: {
  identity: GrpcClient<typeof IdentityService>;
  catalog: GrpcClient<typeof CatalogService>;
  inventory: GrpcClient<typeof InventoryService>;
  payments: GrpcClient<typeof PaymentsService>;
  orders: GrpcClient<typeof OrdersService>;
};

beforeAll(async () => {
  configureLogging("orders-test", "warn");
  vhost = await testVhost();
  const identity = await launchProcess("identity", { AMQP_URL: vhost.url, INTERNAL_AUTH_SECRET: secret });
  processes.push(identity);
  const peers = { AMQP_URL: vhost.url, JWKS_URL: `${identity.httpUrl}/.well-known/jwks.json` };
  const [catalog, payments] = await Promise.all([
    launchProcess("catalog", peers),
    launchProcess("payments", { ...peers, DATABASE_URL: paymentsDatabase.url }),
  ]);
  processes.push(catalog!, payments!);
  const inventory = await launchProcess("inventory", { ...peers, CATALOG_ADDR: catalog!.grpcAddress });
  processes.push(inventory);
  ordersEnv = {
    ...peers,
    ...ordersPorts,
    DATABASE_URL: ordersDatabase.url,
    IDENTITY_ADDR: identity.grpcAddress,
    INTERNAL_AUTH_SECRET: secret,
    CATALOG_ADDR: catalog!.grpcAddress,
    INVENTORY_ADDR: inventory.grpcAddress,
    PAYMENTS_ADDR: payments!.grpcAddress,
    SAGA_POLL_MS: "100",
  };
  orders = await launchProcess("orders", ordersEnv);
  const options = { defaultTimeoutMs: 10_000 };
  clients = {
    identity: createClient(IdentityService, identity.grpcAddress, options),
    catalog: createClient(CatalogService, catalog!.grpcAddress, options),
    inventory: createClient(InventoryService, inventory.grpcAddress, options),
    payments: createClient(PaymentsService, payments!.grpcAddress, options),
    orders: createClient(OrdersService, orders.grpcAddress, options),
  };
  paymentsSql = postgres(paymentsDatabase.url, { max: 1, onnotice: () => {} });
  ordersSql = postgres(ordersDatabase.url, { max: 1, onnotice: () => {} });
}, 120_000);

afterAll(async () => {
  for (const c of Object.values(clients ?? {})) c.close();
  await paymentsSql?.end({ timeout: 5 });
  await ordersSql?.end({ timeout: 5 });
  await orders?.cleanup();
  await Promise.all(processes.map((p) => p.cleanup()));
  await ordersDatabase.drop();
  await paymentsDatabase.drop();
  await vhost?.drop();
}, 60_000);

async function newBuyer(): Promise<{ id: string; auth: BearerAuth }> {
  const res = await clients.identity.register({ email: `${uniqueName("buyer")}@example.com`, password: "correct horse battery", displayName: "Test Buyer" });
  return { id: res.user!.id, auth: bearer(res.tokens!.accessToken) };
}

async function adminAuth(): Promise<BearerAuth> {
  const res = await clients.identity.login({ email: "admin@bazaar.local", password: "bazaar-admin" });
  return bearer(res.tokens!.accessToken);
}

/** Distinct catalog products with at least `min` units available (inventory learns of them from catalog events). */
let used = 0;
async function stocked(min: number): Promise<{ id: string; name: string; available: number }> {
  const { products } = await clients.catalog.listProducts({ pageSize: 100 });
  return eventually(async () => {
    const { levels } = await clients.inventory.getStock({ productIds: products.map((p) => p.id) });
    const ok = levels.filter((l) => l.available >= min);
    const level = ok[used % Math.max(ok.length, 1)];
    if (!level) return undefined;
    used++;
    return { id: level.productId, name: products.find((p) => p.id === level.productId)!.name, available: level.available };
  }, { what: `a product with ${min}+ units`, timeoutMs: 30_000 });
}

async function available(productId: string): Promise<number> {
  const { levels } = await clients.inventory.getStock({ productIds: [productId] });
  return levels[0]?.available ?? 0;
}

async function finalOrder(id: string, auth: BearerAuth, timeoutMs = 15_000): Promise<Order> {
  return eventually(async () => {
    const { order } = await clients.orders.getOrder({ id }, auth);
    return order && order.status !== OrderStatus.PENDING ? order : undefined;
  }, { what: `order ${id} to be final`, timeoutMs });
}

async function paymentsOf(orderId: string): Promise<{ status: string }[]> {
  return paymentsSql<{ status: string }[]>`select status from payments where order_id = ${orderId}`;
}

describe("orders with the real services", () => {
  test("a good card: CONFIRMED, one captured payment, stock sold", async () => {
    const buyer = await newBuyer();
    const p = await stocked(2);
    const { order: placed } = await clients.orders.placeOrder({ idempotencyKey: uniqueName("good"), lines: [{ productId: p.id, quantity: 2 }], card: goodCard }, buyer.auth);
    const order = await finalOrder(placed!.id, buyer.auth);
    expect(order.status).toBe(OrderStatus.CONFIRMED);
    expect(order.items[0]?.name).toBe(p.name);
    const { payment } = await clients.payments.getPayment({ id: order.paymentId }, buyer.auth);
    expect(payment?.status).toBe(PaymentStatus.CAPTURED);
    expect(payment?.amount?.amountMinor).toBe(order.total!.amountMinor);
    expect(await paymentsOf(order.id)).toEqual([{ status: "CAPTURED" }]);
    expect(await available(p.id)).toBe(p.available - 2);
    // The outcome is counted on /metrics.
    const metrics = await (await fetch(`${orders!.httpUrl}/metrics`)).text();
    expect(metrics).toMatch(/bazaar_saga_outcomes_total\{outcome="confirmed",reason="none",service="orders"\} [1-9]/);
    expect(metrics).toContain("bazaar_saga_duration_seconds_count");
  }, 30_000);

  test("a declined card: CANCELLED with the processor's reason, the stock given back", async () => {
    const buyer = await newBuyer();
    const p = await stocked(1);
    const { order: placed } = await clients.orders.placeOrder({ idempotencyKey: uniqueName("declined"), lines: [{ productId: p.id, quantity: 1 }], card: declinedCard }, buyer.auth);
    const order = await finalOrder(placed!.id, buyer.auth);
    expect(order.status).toBe(OrderStatus.CANCELLED);
    expect(order.cancelReason).toBe("Your card was declined.");
    expect(await paymentsOf(order.id)).toEqual([{ status: "FAILED" }]);
    expect(await available(p.id)).toBe(p.available);
  }, 30_000);

  test("more than inventory has: CANCELLED naming the product, nothing charged", async () => {
    const buyer = await newBuyer();
    const admin = await adminAuth();
    const p = await stocked(3);
    // Leave exactly 2 units available.
    await clients.inventory.adjustStock({ productId: p.id, delta: 2 - p.available, reason: "orders test: make it scarce" }, admin);
    const { order: placed } = await clients.orders.placeOrder({ idempotencyKey: uniqueName("scarce"), lines: [{ productId: p.id, quantity: 3 }], card: goodCard }, buyer.auth);
    const order = await finalOrder(placed!.id, buyer.auth);
    expect(order.status).toBe(OrderStatus.CANCELLED);
    expect(order.cancelReason).toBe(`Not enough stock of ${p.name}.`);
    expect(await paymentsOf(order.id)).toEqual([]);
    expect(await available(p.id)).toBe(2);
  }, 30_000);

  test("the orders process killed inside the charge: restarted, it finishes the order at once, charged once", async () => {
    const buyer = await newBuyer();
    const admin = await adminAuth();
    const p = await stocked(1);
    // A slow processor keeps the saga inside the charge step long enough to kill orders there.
    await clients.payments.setFaultSettings({ settings: { failureRate: 0, addedLatencyMs: 1_500 } }, admin);
    try {
      const placing = clients.orders
        .placeOrder({ idempotencyKey: uniqueName("crash"), lines: [{ productId: p.id, quantity: 1 }], card: goodCard }, { ...buyer.auth, timeoutMs: 10_000 })
        .catch((err: unknown) => err);
      const pending = await eventually(async () => (await clients.orders.listOrders({}, buyer.auth)).orders[0], { what: "the order to exist" });
      // The reserve step recorded, the charge claimed: the slow processor holds the saga there.
      await eventually(async () => (await ordersSql`select step from sagas where order_id = ${pending.id} and attempts > 0`)[0]?.step === "charge", { what: "the saga to reach the charge step" });
      await orders!.child.stop("SIGKILL");
      // Killed mid-saga: the caller never got an answer.
      expect(await placing).toBeInstanceOf(RpcError);
      expect((await ordersSql`select step from sagas where order_id = ${pending.id}`)[0]?.step).toBe("charge");
      await clients.payments.setFaultSettings({ settings: { failureRate: 0, addedLatencyMs: 0 } }, admin);
      const restartedAt = Date.now();
      orders = await launchProcess("orders", ordersEnv);
      // Well inside the 30 s lease: the restarted process took back its own sagas.
      const order = await finalOrder(pending.id, buyer.auth, 10_000);
      expect(Date.now() - restartedAt).toBeLessThan(15_000);
      expect(orders.child.output()).toContain("took back the sagas of this instance's previous run");
      expect(order.status).toBe(OrderStatus.CONFIRMED);
      expect(await paymentsOf(order.id)).toEqual([{ status: "CAPTURED" }]);
      expect(await available(p.id)).toBe(p.available - 1);
    } finally {
      await clients.payments.setFaultSettings({ settings: { failureRate: 0, addedLatencyMs: 0 } }, admin);
    }
  }, 60_000);
});
