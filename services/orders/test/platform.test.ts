import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { RpcError } from "@bazaar/platform/errors";
import { configureLogging } from "@bazaar/platform/log";
import { eventually } from "@bazaar/testkit/eventually";
import { type BearerAuth, bearer, registerAndLogin, uniqueName } from "@bazaar/testkit/fixtures";
import { startTestPlatform, type TestPlatform } from "@bazaar/testkit/test-platform";
import { type Order, OrderStatus } from "@bazaar/proto/bazaar/orders/v1/orders_pb";
import { PaymentStatus } from "@bazaar/proto/bazaar/payments/v1/payments_pb";

// Orders against the real identity, catalog, inventory and payments processes (and a real
// orders process, so that it can be killed): every one with its own database, on free
// ports, sharing one RabbitMQ vhost of this run's own.
const goodCard = { number: "4242 4242 4242 4242", expiryMonth: 12, expiryYear: new Date().getFullYear() + 3, cvc: "123" };
const declinedCard = { ...goodCard, number: "4000 0000 0000 0002" };

let platform: TestPlatform;
let clients: TestPlatform["clients"];

beforeAll(async () => {
  configureLogging("orders-test", "warn");
  platform = await startTestPlatform({ orders: { SAGA_POLL_MS: "100" } }, { only: ["identity", "catalog", "inventory", "payments", "orders"] });
  clients = platform.clients;
}, 120_000);

afterAll(async () => {
  await platform?.cleanup();
}, 60_000);

async function newBuyer(): Promise<{ id: string; auth: BearerAuth }> {
  const { user, tokens } = await registerAndLogin(clients.identity);
  return { id: user.id, auth: bearer(tokens.accessToken) };
}

/** A payment method token of the buyer's for `card`, from payments (as the BFF gets one at checkout). */
async function tokenize(buyer: { auth: BearerAuth }, card = goodCard): Promise<string> {
  const { paymentMethod } = await clients.payments.createPaymentMethod({ card }, buyer.auth);
  return paymentMethod!.token;
}

async function adminAuth(): Promise<BearerAuth> {
  const res = await clients.identity.login({ email: "admin@bazaar.local", password: "bazaar-admin" });
  return bearer(res.tokens!.accessToken);
}

/** Distinct catalog products with at least `min` units available (inventory learns of them from catalog events). */
let used = 0;
async function stocked(min: number): Promise<{ id: string; name: string; available: number }> {
  const { products } = await clients.catalog.listProducts({ pageSize: 100 });
  return eventually(
    async () => {
      const { levels } = await clients.inventory.getStock({ productIds: products.map((p) => p.id) });
      const ok = levels.filter((l) => l.available >= min);
      const level = ok[used % Math.max(ok.length, 1)];
      if (!level) return undefined;
      used++;
      return { id: level.productId, name: products.find((p) => p.id === level.productId)!.name, available: level.available };
    },
    { what: `a product with ${min}+ units`, timeoutMs: 30_000 },
  );
}

async function available(productId: string): Promise<number> {
  const { levels } = await clients.inventory.getStock({ productIds: [productId] });
  return levels[0]?.available ?? 0;
}

async function finalOrder(id: string, auth: BearerAuth, timeoutMs = 15_000): Promise<Order> {
  return eventually(
    async () => {
      const { order } = await clients.orders.getOrder({ id }, auth);
      return order && order.status !== OrderStatus.PENDING ? order : undefined;
    },
    { what: `order ${id} to be final`, timeoutMs },
  );
}

async function paymentsOf(orderId: string): Promise<{ status: string }[]> {
  return platform.query<{ status: string }>("payments", "select status from payments where order_id = $1", [orderId]);
}

describe("orders with the real services", () => {
  test("a token is its owner's only: another buyer's order with it is CANCELLED, nothing charged, and the owner's own order with it goes through once", async () => {
    const [owner, thief] = [await newBuyer(), await newBuyer()];
    const p = await stocked(2);
    const token = await tokenize(owner);
    const { order: stolen } = await clients.orders.placeOrder(
      { idempotencyKey: uniqueName("stolen"), lines: [{ productId: p.id, quantity: 1 }], paymentMethodToken: token },
      thief.auth,
    );
    const refused = await finalOrder(stolen!.id, thief.auth);
    expect(refused.status).toBe(OrderStatus.CANCELLED);
    expect(refused.cancelReason).toBe("Your payment details expired before the order could be paid; you have not been charged. Please check out again.");
    expect(await paymentsOf(refused.id)).toEqual([]);
    const { order: placed } = await clients.orders.placeOrder(
      { idempotencyKey: uniqueName("own"), lines: [{ productId: p.id, quantity: 1 }], paymentMethodToken: token },
      owner.auth,
    );
    expect((await finalOrder(placed!.id, owner.auth)).status).toBe(OrderStatus.CONFIRMED);
    // Used once: a second order with it is cancelled the same way, and charged nothing.
    const { order: again } = await clients.orders.placeOrder(
      { idempotencyKey: uniqueName("again"), lines: [{ productId: p.id, quantity: 1 }], paymentMethodToken: token },
      owner.auth,
    );
    expect((await finalOrder(again!.id, owner.auth)).status).toBe(OrderStatus.CANCELLED);
    expect(await paymentsOf(again!.id)).toEqual([]);
    expect(await available(p.id)).toBe(p.available - 1);
  }, 30_000);

  test("a good card: CONFIRMED, one captured payment, stock sold", async () => {
    const buyer = await newBuyer();
    const p = await stocked(2);
    const { order: placed } = await clients.orders.placeOrder(
      { idempotencyKey: uniqueName("good"), lines: [{ productId: p.id, quantity: 2 }], paymentMethodToken: await tokenize(buyer) },
      buyer.auth,
    );
    const order = await finalOrder(placed!.id, buyer.auth);
    expect(order.status).toBe(OrderStatus.CONFIRMED);
    expect(order.items[0]?.name).toBe(p.name);
    const { payment } = await clients.payments.getPayment({ id: order.paymentId }, buyer.auth);
    expect(payment?.status).toBe(PaymentStatus.CAPTURED);
    expect(payment?.amount?.amountMinor).toBe(order.total!.amountMinor);
    expect(await paymentsOf(order.id)).toEqual([{ status: "CAPTURED" }]);
    expect(await available(p.id)).toBe(p.available - 2);
    // The outcome is counted on /metrics.
    const metrics = await (await fetch(`${platform.httpUrl("orders")}/metrics`)).text();
    expect(metrics).toMatch(/bazaar_saga_outcomes_total\{outcome="confirmed",reason="none",service="orders"\} [1-9]/);
    expect(metrics).toContain("bazaar_saga_duration_seconds_count");
  }, 30_000);

  test("a declined card: CANCELLED with the processor's reason, the stock given back", async () => {
    const buyer = await newBuyer();
    const p = await stocked(1);
    const { order: placed } = await clients.orders.placeOrder(
      { idempotencyKey: uniqueName("declined"), lines: [{ productId: p.id, quantity: 1 }], paymentMethodToken: await tokenize(buyer, declinedCard) },
      buyer.auth,
    );
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
    const { order: placed } = await clients.orders.placeOrder(
      { idempotencyKey: uniqueName("scarce"), lines: [{ productId: p.id, quantity: 3 }], paymentMethodToken: await tokenize(buyer) },
      buyer.auth,
    );
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
        .placeOrder(
          { idempotencyKey: uniqueName("crash"), lines: [{ productId: p.id, quantity: 1 }], paymentMethodToken: await tokenize(buyer) },
          { ...buyer.auth, timeoutMs: 10_000 },
        )
        .catch((err: unknown) => err);
      const pending = await eventually(async () => (await clients.orders.listOrders({}, buyer.auth)).orders[0], { what: "the order to exist" });
      // The reserve step recorded, the charge claimed: the slow processor holds the saga there.
      await eventually(
        async () =>
          (await platform.query<{ step: string }>("orders", "select step from sagas where order_id = $1 and attempts > 0", [pending.id]))[0]?.step === "charge",
        { what: "the saga to reach the charge step" },
      );
      await platform.stop("orders", "SIGKILL");
      // Killed mid-saga: the caller never got an answer.
      expect(await placing).toBeInstanceOf(RpcError);
      expect((await platform.query<{ step: string }>("orders", "select step from sagas where order_id = $1", [pending.id]))[0]?.step).toBe("charge");
      await clients.payments.setFaultSettings({ settings: { failureRate: 0, addedLatencyMs: 0 } }, admin);
      const restartedAt = Date.now();
      await platform.start("orders");
      // Well inside the 30 s lease: the restarted process took back its own sagas.
      const order = await finalOrder(pending.id, buyer.auth, 10_000);
      expect(Date.now() - restartedAt).toBeLessThan(15_000);
      expect(platform.process("orders").output()).toContain("took back the sagas of this instance's previous run");
      expect(order.status).toBe(OrderStatus.CONFIRMED);
      expect(await paymentsOf(order.id)).toEqual([{ status: "CAPTURED" }]);
      expect(await available(p.id)).toBe(p.available - 1);
    } finally {
      await clients.payments.setFaultSettings({ settings: { failureRate: 0, addedLatencyMs: 0 } }, admin);
    }
  }, 60_000);
});
