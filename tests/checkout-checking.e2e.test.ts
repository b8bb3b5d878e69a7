/**
 * The checkout page's "we are checking your order" loop, in headless Chromium (playwright-core,
 * Debian's /usr/bin/chromium): every service a real process, the BFF's app with the built web
 * UI served over HTTP, and orders SIGKILLed at checkout. The page must say it is checking (not
 * fail), and show the order by itself once orders is back: one order, one payment.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync } from "node:fs";
import type { Browser, Page } from "playwright-core";
import { configureLogging } from "@bazaar/platform/log";
import { launchChromium } from "@bazaar/testkit/chromium";
import { eventually } from "@bazaar/testkit/eventually";
import { bearer, repoRoot } from "@bazaar/testkit/fixtures";
import { stockedProducts } from "@bazaar/testkit/test-platform";
import { buildWeb } from "../bff/src/web.ts";
import { type BffTestPlatform, startBffTestPlatform } from "../bff/test/support/bff-platform.ts";
import { demoAdmin } from "../bff/test/support/browser.ts";

const ARTIFACTS = `${repoRoot}/test-artifacts`;
const PAYS = "4242 4242 4242 4242";

let env: BffTestPlatform;
let server: ReturnType<typeof Bun.serve> | undefined;
let browser: Browser | undefined;
let products: { id: string }[];
const bffUrl = () => `http://127.0.0.1:${server!.port}`;

beforeAll(async () => {
  configureLogging("checkout-e2e", "error");
  // A short checkout budget: the BFF's three attempts against a dead orders end in about a second.
  env = await startBffTestPlatform({}, { checkoutTimeoutMs: 3_000, web: await buildWeb() });
  server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: env.bff.app.fetch });
  browser = await launchChromium();
  products = await stockedProducts(env.platform.clients, 2, 5);
}, 120_000);

afterAll(async () => {
  await browser?.close().catch(() => {});
  await server?.stop(true);
  await env?.cleanup();
}, 60_000);

/** A new shopper, signed up through the form, with `productId` added to their cart on its page, on the checkout page with the card filled in. Returns their user id. */
async function shopperAtCheckout(page: Page, productId: string): Promise<string> {
  const email = `checking-${Date.now()}-${Math.random().toString(36).slice(2, 8)}@example.test`;
  await page.goto(`${bffUrl()}/signup`);
  const form = page.locator("[data-testid=signup-form]");
  await form.waitFor({ timeout: 10_000 });
  await form.locator("input[name=displayName]").fill("Checking Shopper");
  await form.locator("input[name=email]").fill(email);
  await form.locator("input[name=password]").fill("correct horse battery staple");
  await page.click("[data-testid=signup-submit]");
  await page.locator("[data-testid=user-menu-button]").waitFor({ timeout: 15_000 });
  await page.goto(`${bffUrl()}/products/${productId}`);
  await page.locator("[data-testid=product-page]").waitFor({ timeout: 10_000 });
  await page.click("[data-testid=add-to-cart]");
  await page.locator("[data-testid=add-result].ok").waitFor({ timeout: 10_000 });
  await page.goto(`${bffUrl()}/checkout`);
  await page.locator("[data-testid=checkout-form]").waitFor({ timeout: 10_000 });
  await page.fill("[data-testid=card-number]", PAYS);
  await page.fill("[data-testid=card-cvc]", "123");
  const [user] = await env.platform.query<{ id: string }>("identity", "select id from users where email = $1", [email]);
  return user!.id;
}

const ordersOf = (userId: string) => env.platform.query<{ id: string; status: string }>("orders", "select id, status from orders where user_id = $1", [userId]);
const paymentsOf = (orderId: string) => env.platform.query<{ status: string }>("payments", "select status from payments where order_id = $1", [orderId]);

/** The page shows the checking state: the BFF's message as a status, no error, the form busy. */
async function expectChecking(page: Page): Promise<void> {
  const checking = page.locator("[data-testid=order-checking]");
  await checking.waitFor({ state: "visible", timeout: 15_000 });
  expect(await checking.textContent()).toContain("We could not confirm your order yet");
  expect(await checking.getAttribute("role")).toBe("status");
  expect(await page.locator("[data-testid=form-error]").isVisible()).toBe(false);
  expect(await page.locator("[data-testid=place-order]").isDisabled()).toBe(true);
  expect(new URL(page.url()).pathname).toBe("/checkout");
}

/** The page moves to the order by itself (no click) and shows it; returns the order id from the URL. */
async function orderShownByItself(page: Page): Promise<string> {
  await page.waitForURL(/\/orders\/[0-9a-f-]{36}$/, { timeout: 30_000 });
  await page.locator("[data-testid=order-status]").waitFor({ timeout: 10_000 });
  return new URL(page.url()).pathname.split("/").at(-1)!;
}

async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: `${ARTIFACTS}/${name}.png`, fullPage: true }).catch(() => {});
}

describe("checkout page while orders is down", () => {
  test("orders down for the whole first attempt: the page says it is checking, and once orders is back places the order by itself, exactly once", async () => {
    const context = await browser!.newContext();
    const page = await context.newPage();
    let ordersDown = false;
    try {
      const userId = await shopperAtCheckout(page, products[0]!.id);
      await env.platform.stop("orders", "SIGKILL");
      ordersDown = true;
      await page.click("[data-testid=place-order]");
      await expectChecking(page);
      await screenshot(page, "checkout-checking");
      expect(await ordersOf(userId)).toEqual([]);
      await env.platform.start("orders");
      ordersDown = false;
      const back = performance.now();
      const orderId = await orderShownByItself(page);
      console.log(`order shown ${(performance.now() - back).toFixed(0)} ms after orders was back (orders down for the first attempt)`);
      const orders = await ordersOf(userId);
      expect(orders.map((o) => o.id)).toEqual([orderId]);
      const final = await eventually(async () => (await ordersOf(userId)).find((o) => o.status !== "PENDING"), {
        what: "the order to be final",
        timeoutMs: 20_000,
      });
      expect(final.status).toBe("CONFIRMED");
      expect((await paymentsOf(orderId)).map((p) => p.status)).toEqual(["CAPTURED"]);
    } finally {
      if (ordersDown) await env.platform.start("orders").catch(() => {});
      await screenshot(page, "checkout-checking-first-attempt");
      await context.close().catch(() => {});
    }
  }, 90_000);

  test("orders SIGKILLed while the PlaceOrder is in flight (the order written, its charge slow): the page says it is checking, then shows that same order by itself, charged once", async () => {
    const admin = bearer((await env.platform.clients.identity.login(demoAdmin)).tokens!.accessToken);
    const context = await browser!.newContext();
    const page = await context.newPage();
    let ordersDown = false;
    try {
      const userId = await shopperAtCheckout(page, products[1]!.id);
      await env.platform.clients.payments.setFaultSettings({ settings: { failureRate: 0, addedLatencyMs: 2_000 } }, admin);
      await page.click("[data-testid=place-order]");
      // The order row is written before the saga charges: kill orders once it is there.
      const [written] = await eventually(
        async () => {
          const rows = await ordersOf(userId);
          return rows.length ? rows : undefined;
        },
        { what: "the order to be written", timeoutMs: 10_000 },
      );
      await env.platform.stop("orders", "SIGKILL");
      ordersDown = true;
      await expectChecking(page);
      await env.platform.clients.payments.setFaultSettings({ settings: { failureRate: 0, addedLatencyMs: 0 } }, admin);
      await env.platform.start("orders");
      ordersDown = false;
      const orderId = await orderShownByItself(page);
      expect(orderId).toBe(written!.id);
      const final = await eventually(async () => (await ordersOf(userId)).find((o) => o.status !== "PENDING"), {
        what: "the order to be final",
        timeoutMs: 20_000,
      });
      expect(final.status).toBe("CONFIRMED");
      expect((await ordersOf(userId)).map((o) => o.id)).toEqual([orderId]);
      expect((await paymentsOf(orderId)).map((p) => p.status)).toEqual(["CAPTURED"]);
    } finally {
      if (ordersDown) await env.platform.start("orders").catch(() => {});
      await env.platform.clients.payments.setFaultSettings({ settings: { failureRate: 0, addedLatencyMs: 0 } }, admin).catch(() => {});
      await screenshot(page, "checkout-checking-in-flight");
      await context.close().catch(() => {});
    }
  }, 90_000);
});
