import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { configureLogging } from "@bazaar/platform/log";
import { registry } from "@bazaar/platform/metrics";
import { eventually } from "@bazaar/testkit/eventually";
import { stockedProducts } from "@bazaar/testkit/test-platform";
import { type BffTestPlatform, startBffTestPlatform } from "./support/bff-platform.ts";
import { body, demoAdmin, TestBrowser } from "./support/browser.ts";

// The product page from the BFF's read model (ProductPageModel): warm, it asks no service; a
// change reaches it through ProductUpdated and StockChanged within the freshness goal (1 s);
// after a broker cut it forgets what it kept. Every service a real process, RabbitMQ real.
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

/** GetProduct and GetStock calls this test process has made so far (the grpc client metric). */
async function pageCalls(): Promise<number> {
  const metric = await registry.getSingleMetric("grpc_client_handled_total")?.get();
  return (metric?.values ?? []).filter((v) => v.labels.grpc_method === "GetProduct" || v.labels.grpc_method === "GetStock").reduce((n, v) => n + v.value, 0);
}

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
