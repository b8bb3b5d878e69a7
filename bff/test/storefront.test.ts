import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { configureLogging } from "@bazaar/platform/log";
import { freePort } from "@bazaar/testkit/fixtures";
import { eventually } from "@bazaar/testkit/eventually";
import { stockedProducts } from "@bazaar/testkit/test-platform";
import { createApp } from "../src/app.ts";
import type { CartView, OrderView } from "../src/shape.ts";
import { type BffTestPlatform, startBffTestPlatform } from "./support/bff-platform.ts";
import { type ApiErrorBody, body, cards, demoAdmin, TestBrowser } from "./support/browser.ts";

// The storefront's pages through the BFF — product page, cart, checkout, orders, notifications,
// admin — against every service as a real process.
let env: BffTestPlatform;

beforeAll(async () => {
  configureLogging("bff-test", "error");
  env = await startBffTestPlatform();
}, 90_000);

afterAll(async () => {
  await env?.cleanup();
}, 60_000);

const browser = () => new TestBrowser(env.bff.app);

async function finalOrder(b: TestBrowser, id: string): Promise<OrderView> {
  return eventually(
    async () => {
      const { order } = await body<{ order: OrderView }>(await b.get(`/api/orders/${id}`));
      return order.status === "PENDING" ? undefined : order;
    },
    { what: `order ${id} to be final`, timeoutMs: 20_000 },
  );
}

describe("product page", () => {
  test("shows the product, its available stock and, signed in, the cart's size: one request", async () => {
    const [p] = await stockedProducts(env.platform.clients, 1, 3);
    const anonymous = await browser().get(`/api/products/${p!.id}`);
    expect(anonymous.status).toBe(200);
    const page = await body<{ product: { id: string; price: { display: string } }; stock: { available: number }; cartCount: number }>(anonymous);
    expect(page.product.id).toBe(p!.id);
    expect(page.product.price.display).toMatch(/^\$/);
    expect(page.stock.available).toBe(p!.available);
    expect(page.cartCount).toBe(0);

    const b = browser();
    await b.signUp();
    await b.post("/api/cart/items", { productId: p!.id, quantity: 2 });
    const signedIn = await body<{ cartCount: number; stock: { available: number } }>(await b.get(`/api/products/${p!.id}`));
    expect(signedIn.cartCount).toBe(2);
    expect(signedIn.stock.available).toBe(p!.available);
  });

  test("the catalog not answering is a 503, an unknown product a 404", async () => {
    expect((await browser().get("/api/products/00000000-0000-4000-8000-000000000000")).status).toBe(404);
    const upstreams = env.upstreamsAt({ catalog: `127.0.0.1:${freePort()}` });
    try {
      const res = await new TestBrowser(createApp({ upstreams, redis: env.redis })).get(`/api/products/${crypto.randomUUID()}`);
      expect(res.status).toBe(503);
      expect((await body<ApiErrorBody>(res)).error.code).toBe("unavailable");
    } finally {
      for (const client of Object.values(upstreams)) client.close();
    }
  });
});

describe("cart", () => {
  test("add, change the quantity, remove: each answer is the whole cart, priced", async () => {
    const [a, c] = await stockedProducts(env.platform.clients, 2, 1);
    const b = browser();
    await b.signUp();
    const empty = await body<{ cart: CartView }>(await b.get("/api/cart"));
    expect(empty.cart).toMatchObject({ lines: [], itemCount: 0 });

    await b.post("/api/cart/items", { productId: a!.id, quantity: 2 });
    const added = await body<{ cart: CartView }>(await b.post("/api/cart/items", { productId: c!.id, quantity: 1 }));
    expect(added.cart.itemCount).toBe(3);
    const line = added.cart.lines.find((l) => l.productId === a!.id)!;
    expect(line.lineTotal.amountMinor).toBe(line.unitPrice.amountMinor * 2);
    expect(added.cart.total.amountMinor).toBe(added.cart.lines.reduce((n, l) => n + l.lineTotal.amountMinor, 0));
    expect(line.name).not.toBe("");

    const updated = await body<{ cart: CartView }>(await b.patch(`/api/cart/items/${a!.id}`, { quantity: 5 }));
    expect(updated.cart.itemCount).toBe(6);
    const removed = await body<{ cart: CartView }>(await b.delete(`/api/cart/items/${c!.id}`));
    expect(removed.cart.lines.map((l) => l.productId)).toEqual([a!.id]);
    const zero = await body<{ cart: CartView }>(await b.patch(`/api/cart/items/${a!.id}`, { quantity: 0 }));
    expect(zero.cart.itemCount).toBe(0);
  });

  test("a product that does not exist is a 404 with the cart service's words", async () => {
    const b = browser();
    await b.signUp();
    const res = await b.post("/api/cart/items", { productId: "00000000-0000-4000-8000-000000000000", quantity: 1 });
    expect(res.status).toBe(404);
    expect((await body<ApiErrorBody>(res)).error.message).toContain("no product has id");
  });
});

describe("checkout and orders", () => {
  test("checkout orders the cart: CONFIRMED (eventually), the cart emptied; the same key again is the same order", async () => {
    const [p] = await stockedProducts(env.platform.clients, 1, 2);
    const b = browser();
    await b.signUp();
    const { cart } = await body<{ cart: CartView }>(await b.post("/api/cart/items", { productId: p!.id, quantity: 2 }));
    const key = crypto.randomUUID();

    const [first, twin] = await Promise.all([b.checkout(cards.good, key), b.checkout(cards.good, key)]);
    expect([first.status, twin.status].sort()).toEqual([200, 201]);
    const placed = (await body<{ order: OrderView }>(first)).order;
    expect((await body<{ order: OrderView }>(twin)).order.id).toBe(placed.id);
    expect(placed.items).toEqual([expect.objectContaining({ productId: p!.id, quantity: 2 })]);
    expect(placed.total.amountMinor).toBe(cart.total.amountMinor);

    const order = await finalOrder(b, placed.id);
    expect(order.status).toBe("CONFIRMED");
    expect(order.cancelReason).toBeNull();
    await eventually(async () => (await body<{ cart: CartView }>(await b.get("/api/cart"))).cart.itemCount === 0, { what: "the cart to be emptied" });

    // A retry after the cart was emptied still gets the order back.
    const retry = await b.checkout(cards.good, key);
    expect(retry.status).toBe(200);
    expect((await body<{ order: OrderView }>(retry)).order.id).toBe(placed.id);
    // And nothing to order is a 409.
    const nothing = await b.checkout();
    expect(nothing.status).toBe(409);
    expect((await body<ApiErrorBody>(nothing)).error.code).toBe("failed_precondition");

    const { orders } = await body<{ orders: OrderView[] }>(await b.get("/api/orders"));
    expect(orders.map((o) => o.id)).toEqual([placed.id]);
  });

  test("a cart shown at $14.50 is not charged $999.99 after an admin's price change: 409 price_changed, nothing ordered, the cart kept", async () => {
    const [p] = await stockedProducts(env.platform.clients, 1, 2);
    const admin = browser();
    await admin.signIn(demoAdmin.email, demoAdmin.password);
    expect((await admin.patch(`/api/admin/products/${p!.id}`, { priceMinor: 1450 })).status).toBe(200);
    const b = browser();
    await b.signUp();
    await b.post("/api/cart/items", { productId: p!.id, quantity: 1 });
    const shown = await eventually(
      async () => {
        const { cart } = await body<{ cart: CartView }>(await b.get("/api/cart"));
        return cart.total.amountMinor === 1450 ? cart.total : undefined;
      },
      { what: "the cart to show $14.50" },
    );
    expect(shown.display).toBe("$14.50");

    expect((await admin.patch(`/api/admin/products/${p!.id}`, { priceMinor: 99_999 })).status).toBe(200);
    const key = crypto.randomUUID();
    const refused = await b.post("/api/checkout", {
      idempotencyKey: key,
      card: cards.good,
      expectedTotal: { currency: shown.currency, amountMinor: shown.amountMinor },
    });
    expect(refused.status).toBe(409);
    const { error } = await body<ApiErrorBody>(refused);
    expect(error.code).toBe("price_changed");
    expect(error.message).toContain("the total is now $999.99, not the $14.50 you were shown");
    expect((await body<{ orders: OrderView[] }>(await b.get("/api/orders"))).orders).toEqual([]);
    expect((await body<{ cart: CartView }>(await b.get("/api/cart"))).cart.itemCount).toBe(1);

    // Shown the new price, the shopper checks out with the same key and pays what they saw.
    await eventually(async () => (await body<{ cart: CartView }>(await b.get("/api/cart"))).cart.total.amountMinor === 99_999, {
      what: "the cart to show $999.99",
    });
    const placed = await b.checkout(cards.good, key);
    expect(placed.status).toBe(201);
    expect((await body<{ order: OrderView }>(placed)).order.total.amountMinor).toBe(99_999);
  });

  test("a declined card ends CANCELLED with the reason", async () => {
    const [p] = await stockedProducts(env.platform.clients, 1, 1);
    const b = browser();
    await b.signUp();
    await b.post("/api/cart/items", { productId: p!.id, quantity: 1 });
    const res = await b.checkout(cards.declined);
    expect([200, 201]).toContain(res.status);
    const order = await finalOrder(b, (await body<{ order: OrderView }>(res)).order.id);
    expect(order.status).toBe("CANCELLED");
    expect(order.cancelReason?.toLowerCase()).toContain("declined");
  });

  test("another user's order is a 404, to read and to cancel; a confirmed order cannot be cancelled", async () => {
    const [p] = await stockedProducts(env.platform.clients, 1, 1);
    const owner = browser();
    await owner.signUp("Owner");
    await owner.post("/api/cart/items", { productId: p!.id, quantity: 1 });
    const { order } = await body<{ order: OrderView }>(await owner.checkout());

    const other = browser();
    await other.signUp("Other");
    const read = await other.get(`/api/orders/${order.id}`);
    expect(read.status).toBe(404);
    expect((await body<ApiErrorBody>(read)).error.code).toBe("not_found");
    expect((await other.post(`/api/orders/${order.id}/cancel`)).status).toBe(404);
    expect((await body<{ orders: OrderView[] }>(await other.get("/api/orders"))).orders).toEqual([]);

    expect((await finalOrder(owner, order.id)).status).toBe("CONFIRMED");
    const cancel = await owner.post(`/api/orders/${order.id}/cancel`);
    expect(cancel.status).toBe(409);
    expect((await body<{ order: OrderView }>(await owner.get(`/api/orders/${order.id}`))).order.status).toBe("CONFIRMED");
  });
});

describe("notifications", () => {
  test("an order's notifications are listed, and marking them read lowers the unread count", async () => {
    const [p] = await stockedProducts(env.platform.clients, 1, 1);
    const b = browser();
    await b.signUp();
    await b.post("/api/cart/items", { productId: p!.id, quantity: 1 });
    const { order } = await body<{ order: OrderView }>(await b.checkout());
    type Page = { notifications: { id: string; kind: string; read: boolean; orderId: string | null; createdAt: string }[]; unreadCount: number };
    const page = await eventually(
      async () => {
        const p = await body<Page>(await b.get("/api/notifications"));
        return p.notifications.some((n) => n.orderId === order.id && n.kind.includes("confirmed")) ? p : undefined;
      },
      { what: "an order-confirmed notification" },
    );
    expect(page.unreadCount).toBeGreaterThan(0);
    expect(Number.isNaN(Date.parse(page.notifications[0]!.createdAt))).toBe(false);

    const one = page.notifications.find((n) => !n.read)!;
    expect(await body<{ marked: number }>(await b.post("/api/notifications/read", { ids: [one.id] }))).toEqual({ marked: 1 });
    expect((await body<Page>(await b.get("/api/notifications"))).unreadCount).toBe(page.unreadCount - 1);
    await b.post("/api/notifications/read", { all: true });
    expect((await body<Page>(await b.get("/api/notifications"))).unreadCount).toBe(0);

    const neither = await b.post("/api/notifications/read", {});
    expect(neither.status).toBe(400);
    expect((await body<ApiErrorBody>(neither)).error.fields?.ids).toBe("send ids, or all: true");
  });
});

describe("admin", () => {
  test("an admin sees everyone's recent orders, edits a product and adjusts stock", async () => {
    const [p] = await stockedProducts(env.platform.clients, 1, 1);
    const buyer = browser();
    const user = await buyer.signUp();
    await buyer.post("/api/cart/items", { productId: p!.id, quantity: 1 });
    const { order } = await body<{ order: OrderView }>(await buyer.checkout());

    const admin = browser();
    await admin.signIn(demoAdmin.email, demoAdmin.password);
    const { orders } = await body<{ orders: (OrderView & { userId: string })[] }>(await admin.get("/api/admin/orders"));
    expect(orders.find((o) => o.id === order.id)?.userId).toBe(user.id);

    const edited = await admin.patch(`/api/admin/products/${p!.id}`, { name: "Renamed by the admin", priceMinor: 1234 });
    expect(edited.status).toBe(200);
    const { product } = await body<{ product: { name: string; price: { amountMinor: number; display: string } } }>(edited);
    expect(product).toMatchObject({ name: "Renamed by the admin", price: { amountMinor: 1234, display: "$12.34" } });
    expect((await body<{ product: { name: string } }>(await buyer.get(`/api/products/${p!.id}`))).product.name).toBe("Renamed by the admin");

    const before = (await env.platform.clients.inventory.getStock({ productIds: [p!.id] })).levels[0]!;
    const adjusted = await admin.post(`/api/admin/stock/${p!.id}`, { delta: 5, reason: "delivery" });
    expect(adjusted.status).toBe(200);
    expect((await body<{ stock: { onHand: number; reserved: number; available: number } }>(adjusted)).stock).toMatchObject({ onHand: before.onHand + 5 });

    const invalid = await admin.post(`/api/admin/stock/${p!.id}`, { delta: 0, reason: "" });
    expect(Object.keys((await body<ApiErrorBody>(invalid)).error.fields!).sort()).toEqual(["delta", "reason"]);
    const emptyPatch = await admin.patch(`/api/admin/products/${p!.id}`, {});
    expect(emptyPatch.status).toBe(400);
  });

  test("a customer's admin requests are 403 and change nothing", async () => {
    const [p] = await stockedProducts(env.platform.clients, 1, 1);
    const b = browser();
    await b.signUp();
    const before = (await env.platform.clients.inventory.getStock({ productIds: [p!.id] })).levels[0]!;
    expect((await b.post(`/api/admin/stock/${p!.id}`, { delta: 100, reason: "free stuff" })).status).toBe(403);
    expect((await b.patch(`/api/admin/products/${p!.id}`, { priceMinor: 1 })).status).toBe(403);
    expect((await env.platform.clients.inventory.getStock({ productIds: [p!.id] })).levels[0]!.onHand).toBe(before.onHand);
  });
});
