import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { status } from "@grpc/grpc-js";
import { type BearerAuth, bearer, registerAndLogin, rpcError, uniqueName } from "@bazaar/testkit/fixtures";
import { OrderStatus, type Order } from "@bazaar/proto/bazaar/orders/v1/orders_pb";
import { PaymentStatus } from "@bazaar/proto/bazaar/payments/v1/payments_pb";
import { findCardData } from "@bazaar/testkit/card-data";
import { eventually } from "@bazaar/testkit/eventually";
import { startTestPlatform, stockedProducts, type TestPlatform } from "@bazaar/testkit/test-platform";

// The commerce domain end to end: every service a real process with its own database, one
// RabbitMQ vhost and Redis prefix of this run's own.
let platform: TestPlatform;

beforeAll(async () => {
  platform = await startTestPlatform();
}, 120_000);

afterAll(async () => {
  await platform?.cleanup();
}, 60_000);

// Security codes with a leading zero, which the card-data scan below tells from anything else.
const goodCard = { number: "4242 4242 4242 4242", expiryMonth: 12, expiryYear: new Date().getFullYear() + 3, cvc: "0917" };
const declinedCard = { ...goodCard, number: "4000 0000 0000 0002", cvc: "0386" };
const insufficientCard = { ...goodCard, number: "4000 0000 0000 9995", cvc: "0452" };

/** A payment method token of the user's for `card`, from payments (as the BFF gets one at checkout). */
async function tokenize(user: { auth: BearerAuth }, card = goodCard): Promise<string> {
  const { paymentMethod } = await platform.clients.payments.createPaymentMethod({ card }, user.auth);
  return paymentMethod!.token;
}

async function newUser(): Promise<{ id: string; auth: BearerAuth }> {
  const { user, tokens } = await registerAndLogin(platform.clients.identity);
  return { id: user.id, auth: bearer(tokens.accessToken) };
}

async function adminAuth(): Promise<BearerAuth> {
  const res = await platform.clients.identity.login({ email: "admin@bazaar.local", password: "bazaar-admin" });
  return bearer(res.tokens!.accessToken);
}

async function finalOrder(id: string, auth: BearerAuth, timeoutMs = 20_000): Promise<Order> {
  return eventually(
    async () => {
      const { order } = await platform.clients.orders.getOrder({ id }, auth);
      return order && order.status !== OrderStatus.PENDING ? order : undefined;
    },
    { what: `order ${id} to be final`, timeoutMs },
  );
}

async function available(productId: string): Promise<number> {
  const { levels } = await platform.clients.inventory.getStock({ productIds: [productId] });
  return levels[0]?.available ?? 0;
}

describe("a purchase", () => {
  test("register, add to cart, place order → CONFIRMED; stock reduced, one payment, cart emptied, a notification", async () => {
    const { cart, orders, payments, notifications } = platform.clients;
    const buyer = await newUser();
    const [a, b] = await stockedProducts(platform.clients, 2, 3);
    const before = { a: await available(a!.id), b: await available(b!.id) };
    await cart.addItem({ productId: a!.id, quantity: 2 }, buyer.auth);
    const { cart: filled } = await cart.addItem({ productId: b!.id, quantity: 1 }, buyer.auth);
    expect(filled?.itemCount).toBe(3);

    const lines = filled!.lines.map((l) => ({ productId: l.productId, quantity: l.quantity }));
    const placed = await orders.placeOrder({ idempotencyKey: uniqueName("checkout"), lines, paymentMethodToken: await tokenize(buyer) }, buyer.auth);
    const order = await finalOrder(placed.order!.id, buyer.auth);
    expect(order.status).toBe(OrderStatus.CONFIRMED);
    expect(order.total?.amountMinor).toBe(filled!.total!.amountMinor);

    expect(await available(a!.id)).toBe(before.a - 2);
    expect(await available(b!.id)).toBe(before.b - 1);
    const { payment } = await payments.getPayment({ id: order.paymentId }, buyer.auth);
    expect(payment?.status).toBe(PaymentStatus.CAPTURED);
    expect(payment?.amount?.amountMinor).toBe(order.total!.amountMinor);
    const charges = await platform.query<{ n: string }>("payments", "select count(*) as n from payments where order_id = $1", [order.id]);
    expect(Number(charges[0]?.n)).toBe(1);

    await eventually(async () => (await cart.getCart({}, buyer.auth)).cart?.itemCount === 0, { what: "the cart to be emptied by OrderConfirmed" });
    await eventually(
      async () => {
        const { notifications: list } = await notifications.listNotifications({}, buyer.auth);
        return list.some((n) => n.kind.includes("confirmed") && n.orderId === order.id) ? true : undefined;
      },
      { what: "an order-confirmed notification" },
    );
  });

  test("a declined card ends CANCELLED with a readable reason, stock restored, no charge standing", async () => {
    const { orders, payments } = platform.clients;
    const buyer = await newUser();
    const [p] = await stockedProducts(platform.clients, 1, 2);
    const before = await available(p!.id);
    const placed = await orders.placeOrder(
      { idempotencyKey: uniqueName("declined"), lines: [{ productId: p!.id, quantity: 1 }], paymentMethodToken: await tokenize(buyer, declinedCard) },
      buyer.auth,
    );
    const order = await finalOrder(placed.order!.id, buyer.auth);
    expect(order.status).toBe(OrderStatus.CANCELLED);
    expect(order.cancelReason.toLowerCase()).toContain("declined");
    expect(await available(p!.id)).toBe(before);
    const rows = await platform.query<{ status: string }>("payments", "select status from payments where order_id = $1", [order.id]);
    expect(rows.every((r) => r.status !== "CAPTURED")).toBe(true);
    if (order.paymentId) expect((await payments.getPayment({ id: order.paymentId }, buyer.auth)).payment?.status).not.toBe(PaymentStatus.CAPTURED);
  });
  test("more of one product than is in stock: CANCELLED naming that product (read from inventory's answer), nothing held", async () => {
    const { catalog, inventory, orders } = platform.clients;
    const buyer = await newUser();
    const [plenty, scarce] = await stockedProducts(platform.clients, 2, 2);
    // Two units left, so that asking for three stays inside the per-line quantity limit.
    const now = await available(scarce!.id);
    if (now !== 2) await inventory.adjustStock({ productId: scarce!.id, delta: 2 - now, reason: "short-stock test" }, await adminAuth());
    const before = { plenty: await available(plenty!.id), scarce: await available(scarce!.id) };
    const { products } = await catalog.batchGetProducts({ ids: [plenty!.id, scarce!.id] });
    const nameOf = (id: string) => products.find((p) => p.id === id)!.name;
    const placed = await orders.placeOrder(
      {
        idempotencyKey: uniqueName("short"),
        lines: [
          { productId: plenty!.id, quantity: 1 },
          { productId: scarce!.id, quantity: before.scarce + 1 },
        ],
        paymentMethodToken: await tokenize(buyer),
      },
      buyer.auth,
    );
    const order = await finalOrder(placed.order!.id, buyer.auth);
    expect(order.status).toBe(OrderStatus.CANCELLED);
    expect(order.cancelReason).toBe(`Not enough stock of ${nameOf(scarce!.id)}.`);
    expect(order.paymentId).toBe("");
    expect({ plenty: await available(plenty!.id), scarce: await available(scarce!.id) }).toEqual(before);
  });
});

describe("concurrency", () => {
  test("two buyers racing for the last unit, many times: never both confirmed, stock never below zero", async () => {
    const { inventory, orders } = platform.clients;
    const admin = await adminAuth();
    const [p] = await stockedProducts(platform.clients, 1, 1);
    for (let round = 0; round < 5; round++) {
      const now = await available(p!.id);
      if (now !== 1) await inventory.adjustStock({ productId: p!.id, delta: 1 - now, reason: `race round ${round}` }, admin);
      const [x, y] = [await newUser(), await newUser()];
      const results = await Promise.all(
        [x, y].map(async (u) =>
          orders.placeOrder({ idempotencyKey: uniqueName("race"), lines: [{ productId: p!.id, quantity: 1 }], paymentMethodToken: await tokenize(u) }, u.auth),
        ),
      );
      const finals = await Promise.all(results.map((r, i) => finalOrder(r.order!.id, [x, y][i]!.auth)));
      expect(finals.filter((o) => o.status === OrderStatus.CONFIRMED)).toHaveLength(1);
      expect(finals.filter((o) => o.status === OrderStatus.CANCELLED)).toHaveLength(1);
      const { levels } = await inventory.getStock({ productIds: [p!.id] });
      expect(levels[0]!.available).toBe(0);
      expect(levels[0]!.onHand).toBeGreaterThanOrEqual(0);
    }
  }, 60_000);

  test("the same PlaceOrder key sent 10 times at once makes one order and one charge, whether the retries bring the same token or fresh ones", async () => {
    const { orders } = platform.clients;
    const buyer = await newUser();
    const [p] = await stockedProducts(platform.clients, 1, 2);
    const request = { idempotencyKey: uniqueName("tenfold"), lines: [{ productId: p!.id, quantity: 1 }], paymentMethodToken: await tokenize(buyer) };
    const fresh = await Promise.all(Array.from({ length: 5 }, () => tokenize(buyer)));
    const results = await Promise.all([
      ...Array.from({ length: 5 }, () => orders.placeOrder(request, buyer.auth)),
      ...fresh.map((paymentMethodToken) => orders.placeOrder({ ...request, paymentMethodToken }, buyer.auth)),
    ]);
    const ids = new Set(results.map((r) => r.order!.id));
    expect(ids.size).toBe(1);
    const order = await finalOrder([...ids][0]!, buyer.auth);
    expect(order.status).toBe(OrderStatus.CONFIRMED);
    const charges = await platform.query<{ n: string }>("payments", "select count(*) as n from payments where order_id = $1", [order.id]);
    expect(Number(charges[0]?.n)).toBe(1);
    const rows = await platform.query<{ n: string }>("orders", "select count(*) as n from orders where idempotency_key = $1", [request.idempotencyKey]);
    expect(Number(rows[0]?.n)).toBe(1);
  });
});

describe("access", () => {
  test("user A reading or cancelling user B's order gets NOT_FOUND", async () => {
    const { orders } = platform.clients;
    const [a, b] = [await newUser(), await newUser()];
    const [p] = await stockedProducts(platform.clients, 1, 1);
    const placed = await orders.placeOrder(
      { idempotencyKey: uniqueName("mine"), lines: [{ productId: p!.id, quantity: 1 }], paymentMethodToken: await tokenize(b, declinedCard) },
      b.auth,
    );
    expect((await rpcError(orders.getOrder({ id: placed.order!.id }, a.auth))).code).toBe(status.NOT_FOUND);
    expect((await rpcError(orders.cancelOrder({ id: placed.order!.id }, a.auth))).code).toBe(status.NOT_FOUND);
    const { orders: listed } = await orders.listOrders({}, a.auth);
    expect(listed.map((o) => o.id)).not.toContain(placed.order!.id);
  });

  test("a customer calling an admin RPC is PERMISSION_DENIED; no token is UNAUTHENTICATED", async () => {
    const { inventory, payments } = platform.clients;
    const buyer = await newUser();
    const [p] = await stockedProducts(platform.clients, 1, 1);
    expect((await rpcError(inventory.adjustStock({ productId: p!.id, delta: 100, reason: "free stuff" }, buyer.auth))).code).toBe(status.PERMISSION_DENIED);
    expect((await rpcError(payments.setFaultSettings({ settings: { failureRate: 1 } }, buyer.auth))).code).toBe(status.PERMISSION_DENIED);
    expect((await rpcError(platform.clients.orders.listOrders({}))).code).toBe(status.UNAUTHENTICATED);
  });
});

/**
 * Places an order with `card` and kills the orders process while its saga is inside the charge
 * step (a slow processor holds it there), runs `whileDown`, then starts orders again; resolves
 * with the order's id.
 */
async function killOrdersMidCharge(
  buyer: { auth: BearerAuth },
  productId: string,
  card = goodCard,
  whileDown: () => Promise<void> = async () => {},
): Promise<string> {
  const { orders, payments } = platform.clients;
  const admin = await adminAuth();
  const earlier = new Set((await orders.listOrders({ pageSize: 100 }, buyer.auth)).orders.map((o) => o.id));
  await payments.setFaultSettings({ settings: { failureRate: 0, addedLatencyMs: 1500 } }, admin);
  try {
    const placing = orders
      .placeOrder(
        { idempotencyKey: uniqueName("crash"), lines: [{ productId, quantity: 1 }], paymentMethodToken: await tokenize(buyer, card) },
        { ...buyer.auth },
      )
      .catch((err: unknown) => err);
    const order = await eventually(async () => (await orders.listOrders({}, buyer.auth)).orders.find((o) => !earlier.has(o.id)), {
      what: "the order to exist",
    });
    // The reserve step recorded, the charge claimed: the slow processor holds the saga there.
    await eventually(
      async () =>
        (await platform.query<{ step: string }>("orders", "select step from sagas where order_id = $1 and attempts > 0", [order.id]))[0]?.step === "charge",
      { what: "the saga to reach the charge step" },
    );
    // Killed mid-saga: the saga holds the token (and, before tokens, held the card).
    expect((await platform.query<{ t: string | null }>("orders", "select payment_method_token as t from sagas where order_id = $1", [order.id]))[0]?.t).toMatch(
      /^pm_/,
    );
    await platform.stop("orders", "SIGKILL");
    await placing;
    await whileDown();
    await payments.setFaultSettings({ settings: { failureRate: 0, addedLatencyMs: 0 } }, admin);
    await platform.start("orders");
    return order.id;
  } finally {
    await payments.setFaultSettings({ settings: { failureRate: 0, addedLatencyMs: 0 } }, admin);
  }
}

describe("failures", () => {
  test("the orders process killed mid-saga: after a restart the order reaches one final state, charged once", async () => {
    const buyer = await newUser();
    const [p] = await stockedProducts(platform.clients, 1, 2);
    const orderId = await killOrdersMidCharge(buyer, p!.id);
    const final = await finalOrder(orderId, buyer.auth, 30_000);
    expect([OrderStatus.CONFIRMED, OrderStatus.CANCELLED]).toContain(final.status);
    const captured = await platform.query<{ n: string }>("payments", "select count(*) as n from payments where order_id = $1 and status = 'CAPTURED'", [
      orderId,
    ]);
    expect(Number(captured[0]?.n)).toBe(final.status === OrderStatus.CONFIRMED ? 1 : 0);
  }, 90_000);

  test("RabbitMQ connections dropped during a stream of orders: every order ends final and no event is lost", async () => {
    const { orders, notifications } = platform.clients;
    const buyer = await newUser();
    const products = await stockedProducts(platform.clients, 3, 4);
    const placing = Array.from({ length: 9 }, async (_, i) =>
      orders.placeOrder(
        { idempotencyKey: uniqueName(`stream${i}`), lines: [{ productId: products[i % 3]!.id, quantity: 1 }], paymentMethodToken: await tokenize(buyer) },
        buyer.auth,
      ),
    );
    // Cut while the stream is under way: once the first of its sagas is recorded.
    await eventually(async () => Number((await platform.query<{ n: string }>("orders", "select count(*) as n from sagas"))[0]?.n) > 0, {
      what: "the first order's saga to be recorded",
    });
    const cut = Bun.spawn(["rabbitmqctl", "-q", "close_all_connections", "-p", platform.vhost, "test: network cut"], { stdout: "ignore", stderr: "ignore" });
    expect(await cut.exited).toBe(0);
    const placed = await Promise.all(placing);
    const finals = await Promise.all(placed.map((r) => finalOrder(r.order!.id, buyer.auth, 30_000)));
    expect(finals.every((o) => o.status === OrderStatus.CONFIRMED)).toBe(true);
    // Every OrderConfirmed reached notifications, and every outbox drained.
    await eventually(
      async () => {
        const { notifications: list } = await notifications.listNotifications({ pageSize: 100 }, buyer.auth);
        const confirmed = new Set(list.filter((n) => n.kind.includes("confirmed")).map((n) => n.orderId));
        return finals.every((o) => confirmed.has(o.id)) ? true : undefined;
      },
      { what: "a notification for every confirmed order", timeoutMs: 30_000 },
    );
    // The relays catch up by themselves once the connections are back (the sweeper runs every second).
    for (const service of ["orders", "payments", "inventory"] as const) {
      await eventually(
        async () => {
          const left = await platform.query<{ n: string }>(service, "select count(*) as n from outbox where published_at is null");
          return Number(left[0]?.n) === 0 ? true : undefined;
        },
        { what: `${service}'s outbox to drain`, timeoutMs: 20_000 },
      );
    }
  }, 90_000);
});

describe("card data", () => {
  test("no column of any service's database holds a card number or security code after purchases, declines and a crash mid-saga", async () => {
    const { orders } = platform.clients;
    const buyer = await newUser();
    const products = await stockedProducts(platform.clients, 3, 3);
    const place = async (card: typeof goodCard, i: number) => {
      const { order } = await orders.placeOrder(
        { idempotencyKey: uniqueName("scan"), lines: [{ productId: products[i % 3]!.id, quantity: 1 }], paymentMethodToken: await tokenize(buyer, card) },
        buyer.auth,
      );
      return finalOrder(order!.id, buyer.auth);
    };
    expect((await place(goodCard, 0)).status).toBe(OrderStatus.CONFIRMED);
    expect((await place(declinedCard, 1)).cancelReason).toBe("Your card was declined.");
    expect((await place(insufficientCard, 2)).cancelReason).toBe("Your card has insufficient funds.");
    // A tokenized card that is never used.
    await tokenize(buyer, { ...goodCard, number: "5555 5555 5555 4444", cvc: "0733" });
    const secrets = {
      numbers: [goodCard, declinedCard, insufficientCard].map((c) => c.number).concat("5555 5555 5555 4444"),
      cvcs: ["0917", "0386", "0452", "0629", "0733"],
    };
    const databases = ["identity", "catalog", "inventory", "orders", "payments", "notifications"] as const;
    const scanAll = async (when: string) => {
      for (const name of databases) {
        const { hits, columns } = await findCardData((text, params) => platform.query(name, text, params), secrets);
        expect({ when, database: name, searched: columns > 5, hits }).toEqual({ when, database: name, searched: true, hits: [] });
      }
    };
    // Killed while the saga is at the charge step, and scanned then: that is when main's sagas
    // table held the card (number and CVC, wiped only once the charge was recorded).
    const crashed = await killOrdersMidCharge(buyer, products[0]!.id, { ...goodCard, cvc: "0629" }, () => scanAll("orders down mid-saga"));
    expect((await finalOrder(crashed, buyer.auth, 30_000)).status).toBe(OrderStatus.CONFIRMED);
    await scanAll("after the run");
    // The search does look where the cards' traces are: the last four digits payments keeps.
    const last4 = await findCardData((text) => platform.query("payments", text), { numbers: [], cvcs: ["9995"] });
    expect(last4.hits.map((h) => `${h.table}.${h.column}`)).toEqual(["payment_methods.card_last4", "payments.card_last4"]);
  }, 120_000);
});
