import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { configureLogging } from "@bazaar/platform/log";
import { eventually } from "@bazaar/testkit/eventually";
import { bearer } from "@bazaar/testkit/fixtures";
import { stockedProducts } from "@bazaar/testkit/test-platform";
import type { OrderView } from "../src/shape.ts";
import { type BffTestPlatform, startBffTestPlatform } from "./support/bff-platform.ts";
import { type ApiErrorBody, body, cards, demoAdmin, TestBrowser } from "./support/browser.ts";

// Checkout when orders goes away mid-call: every service is a real process, and the test
// SIGKILLs orders while a PlaceOrder is in flight (payments made slow, so the saga is at its
// charge), as the outside fault test did. The order exists; the shopper must not be told it failed.
let env: BffTestPlatform;

beforeAll(async () => {
  configureLogging("bff-test", "error");
  env = await startBffTestPlatform({}, { checkoutTimeoutMs: 3_000 });
}, 90_000);

afterAll(async () => {
  await env?.cleanup();
}, 60_000);

async function adminAuth() {
  return bearer((await env.platform.clients.identity.login(demoAdmin)).tokens!.accessToken);
}

describe("checkout while orders crashes", () => {
  test("orders SIGKILLed during PlaceOrder: the shopper gets 503 order_unconfirmed (not a failure), and asking again with the same key shows the one order, charged once", async () => {
    const b = new TestBrowser(env.bff.app);
    const user = await b.signUp();
    const [product] = await stockedProducts(env.platform.clients, 1, 1);
    expect((await b.post("/api/cart/items", { productId: product!.id, quantity: 1 })).status).toBe(200);
    const admin = await adminAuth();
    await env.platform.clients.payments.setFaultSettings({ settings: { failureRate: 0, addedLatencyMs: 2_000 } }, admin);
    const key = crypto.randomUUID();
    let answer: Response | undefined;
    let ordersDown = false;
    try {
      const checkout = b.checkout(cards.good, key);
      // The order row is written before the saga charges: kill orders once it is there.
      const [placed] = await eventually(
        async () => {
          const rows = await env.platform.query<{ id: string }>("orders", "select id from orders where user_id = $1", [user.id]);
          return rows.length ? rows : undefined;
        },
        { what: "the order to be written", timeoutMs: 10_000 },
      );
      await env.platform.stop("orders", "SIGKILL");
      ordersDown = true;
      answer = await checkout;
      expect(answer.status).toBe(503);
      const { error } = await body<ApiErrorBody>(answer);
      expect(error.code).toBe("order_unconfirmed");
      expect(error.message).toContain("We could not confirm your order yet");

      await env.platform.start("orders");
      ordersDown = false;
      await env.platform.clients.payments.setFaultSettings({ settings: { failureRate: 0, addedLatencyMs: 0 } }, admin);
      // What the page does: ask again with the same key until the order is there.
      const again = await eventually(
        async () => {
          const res = await b.checkout(cards.good, key);
          return res.status === 503 ? undefined : res;
        },
        { what: "checkout with the same key to answer", timeoutMs: 20_000 },
      );
      expect([200, 201]).toContain(again.status);
      const { order } = await body<{ order: OrderView }>(again);
      expect(order.id).toBe(placed!.id);
      const final = await eventually(
        async () => {
          const { order: now } = await body<{ order: OrderView }>(await b.get(`/api/orders/${order.id}`));
          return now.status === "PENDING" ? undefined : now;
        },
        { what: "the order to be final", timeoutMs: 20_000 },
      );
      expect(final.status).toBe("CONFIRMED");
      expect((await body<{ orders: OrderView[] }>(await b.get("/api/orders"))).orders.map((o) => o.id)).toEqual([order.id]);
      const charges = await env.platform.query<{ status: string }>("payments", "select status from payments where order_id = $1", [order.id]);
      expect(charges.map((c) => c.status)).toEqual(["CAPTURED"]);
    } finally {
      if (ordersDown) await env.platform.start("orders").catch(() => {});
      await env.platform.clients.payments.setFaultSettings({ settings: { failureRate: 0, addedLatencyMs: 0 } }, admin).catch(() => {});
    }
  }, 90_000);
});
