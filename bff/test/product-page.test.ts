import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { configureLogging } from "@bazaar/platform/log";
import { registry } from "@bazaar/platform/metrics";
import { eventually } from "@bazaar/testkit/eventually";
import { stockedProducts } from "@bazaar/testkit/test-platform";
import { type BffTestPlatform, startBffTestPlatform } from "./support/bff-platform.ts";
import { CartCounts } from "../src/cart-counts.ts";
import type { OrderView } from "../src/shape.ts";
import { body, cards, demoAdmin, TestBrowser } from "./support/browser.ts";

// The product page from the BFF's read model (ProductPageModel): warm, it asks no service; a
// change reaches it through ProductUpdated and StockChanged within the freshness goal (1 s);
// after a broker cut it forgets what it kept. The cart count from the count the BFF keeps per
// user in Redis (CartCounts). Every service a real process, RabbitMQ and Redis real.
let env: BffTestPlatform;
let admin: TestBrowser;

beforeAll(async () => {
  configureLogging("bff-test", "error");
  env = await startBffTestPlatform();
  admin = new TestBrowser(env.bff.app);
  expect((await admin.signIn(demoAdmin.email, demoAdmin.password)).status).toBe(200);
}, 90_000);

afterAll(async () => {
  await env?.cleanup();
}, 60_000);

interface Page {
  product: { name: string; price: { amountMinor: number } };
  stock: { available: number };
}

const page = async (id: string) => body<Page>(await new TestBrowser(env.bff.app).get(`/api/products/${id}`));

/** Calls of these methods this test process has made so far (the grpc client metric). */
async function calls(...methods: string[]): Promise<number> {
  const metric = await registry.getSingleMetric("grpc_client_handled_total")?.get();
  return (metric?.values ?? []).filter((v) => methods.includes(String(v.labels.grpc_method))).reduce((n, v) => n + v.value, 0);
}

const pageCalls = () => calls("GetProduct", "GetStock");

/** Waits for the page to show what `shows` looks for; returns how long that took after `since`. */
async function shownAfter(since: number, id: string, shows: (p: Page) => boolean): Promise<number> {
  await eventually(async () => shows(await page(id)), { what: "the product page to show the change", timeoutMs: 5_000, intervalMs: 5 });
  return performance.now() - since;
}

describe("product page read model", () => {
  test("a warm product page asks neither catalog nor inventory", async () => {
    const [p] = await stockedProducts(env.platform.clients, 1, 1);
    await page(p!.id);
    const before = await pageCalls();
    for (let i = 0; i < 20; i++) expect((await page(p!.id)).stock.available).toBe(p!.available);
    expect(await pageCalls()).toBe(before);
  });

  test("a price change and a stock change show on a warm page within a second", async () => {
    const [p] = await stockedProducts(env.platform.clients, 1, 1);
    const warm = await page(p!.id);
    const price = warm.product.price.amountMinor + 7;
    let t0 = performance.now();
    expect((await admin.patch(`/api/admin/products/${p!.id}`, { priceMinor: price, name: "Renamed for the page" })).status).toBe(200);
    const priceMs = await shownAfter(t0, p!.id, (x) => x.product.price.amountMinor === price && x.product.name === "Renamed for the page");
    t0 = performance.now();
    expect((await admin.post(`/api/admin/stock/${p!.id}`, { delta: 3, reason: "delivery" })).status).toBe(200);
    const stockMs = await shownAfter(t0, p!.id, (x) => x.stock.available === warm.stock.available + 3);
    expect(priceMs).toBeLessThan(1_000);
    expect(stockMs).toBeLessThan(1_000);
  });

  test("an admin's change shows at once on the page of the replica that made it", async () => {
    const [p] = await stockedProducts(env.platform.clients, 1, 1);
    const warm = await page(p!.id);
    const price = warm.product.price.amountMinor + 3;
    expect((await admin.patch(`/api/admin/products/${p!.id}`, { priceMinor: price })).status).toBe(200);
    expect((await admin.post(`/api/admin/stock/${p!.id}`, { delta: 2, reason: "delivery" })).status).toBe(200);
    const now = await page(p!.id);
    expect(now.product.price.amountMinor).toBe(price);
    expect(now.stock.available).toBe(warm.stock.available + 2);
  });

  test("after a broker cut the page forgets what it kept and asks the services again", async () => {
    const [p] = await stockedProducts(env.platform.clients, 1, 1);
    await page(p!.id);
    let reconnected = false;
    // Registered after the model's own listener, so it runs once the model was dropped.
    env.bff.broker.onConnected(() => {
      reconnected = true;
    });
    const cut = Bun.spawn(["rabbitmqctl", "-q", "close_all_connections", "-p", env.platform.vhost, "test: network cut"], { stdout: "ignore", stderr: "pipe" });
    expect(await cut.exited).toBe(0);
    await eventually(() => reconnected, { what: "the BFF's broker to reconnect", timeoutMs: 20_000 });
    const before = await pageCalls();
    await page(p!.id);
    expect(await pageCalls()).toBe(before + 2);
    // And it follows changes again, on the new connection's queue.
    const price = (await page(p!.id)).product.price.amountMinor + 1;
    expect((await admin.patch(`/api/admin/products/${p!.id}`, { priceMinor: price })).status).toBe(200);
    await eventually(async () => (await page(p!.id)).product.price.amountMinor === price, { what: "the price after the reconnect", timeoutMs: 5_000 });
  }, 40_000);
});

describe("cart count on the product page", () => {
  const cartCount = async (b: TestBrowser, id: string) => (await body<{ cartCount: number }>(await b.get(`/api/products/${id}`))).cartCount;

  test("a cart change made through one replica shows on another's page at once, and repeated pages do not ask the cart service", async () => {
    const [p] = await stockedProducts(env.platform.clients, 1, 3);
    const other = await env.replica();
    const onFirst = new TestBrowser(env.bff.app);
    await onFirst.signUp();
    const onOther = onFirst.on(other.app);
    expect(await cartCount(onOther, p!.id)).toBe(0);
    expect((await onFirst.post("/api/cart/items", { productId: p!.id, quantity: 2 })).status).toBe(200);
    expect(await cartCount(onOther, p!.id)).toBe(2);
    expect((await onFirst.patch(`/api/cart/items/${p!.id}`, { quantity: 1 })).status).toBe(200);
    const before = await calls("GetCart");
    for (let i = 0; i < 5; i++) expect(await cartCount(onOther, p!.id)).toBe(1);
    expect(await calls("GetCart")).toBe(before);
  });

  test("an answer from before a change, arriving after it, does not put the old count back", async () => {
    const counts = new CartCounts(env.redis);
    const userId = crypto.randomUUID();
    const cart = (revision: number, itemCount: number) => ({ revision, itemCount }) as Parameters<CartCounts["offer"]>[1];
    await counts.offer(userId, cart(3, 5));
    await counts.offer(userId, cart(2, 4));
    expect(await counts.count(userId, async () => cart(9, 9))).toBe(5);
    await counts.offer(userId, cart(4, 0));
    expect(await counts.count(userId, async () => cart(9, 9))).toBe(0);
  });

  test("after an order is confirmed the page shows the emptied cart", async () => {
    const [p] = await stockedProducts(env.platform.clients, 1, 3);
    const b = new TestBrowser(env.bff.app);
    await b.signUp();
    await b.post("/api/cart/items", { productId: p!.id, quantity: 1 });
    expect(await cartCount(b, p!.id)).toBe(1);
    const placed = await b.checkout(cards.good);
    expect(placed.status).toBe(201);
    const { order } = await body<{ order: OrderView }>(placed);
    await eventually(async () => (await body<{ order: OrderView }>(await b.get(`/api/orders/${order.id}`))).order.status === "CONFIRMED", {
      what: "the order to be confirmed",
      timeoutMs: 20_000,
    });
    await eventually(async () => (await cartCount(b, p!.id)) === 0, { what: "the page to show the emptied cart", timeoutMs: 5_000 });
  }, 40_000);
});
