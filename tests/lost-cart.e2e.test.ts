/**
 * What a shopper sees when Redis loses everything (as this machine's Redis, which keeps
 * nothing on disk, does on a restart): the whole platform from the dev runner on a redis-server
 * of this test's own, headless Chromium shopping on it, and Redis flushed under it. The session
 * is gone, so the page sends the shopper to sign in and back; the cart is gone, so the cart
 * page says so and puts the items back from the browser's copy (bff/web/src/cart-copy.ts).
 * A cart emptied by a real checkout is not taken for a lost one.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync } from "node:fs";
import type { Browser, Page } from "playwright-core";
import { launchChromium } from "@bazaar/testkit/chromium";
import { connectRedis } from "@bazaar/platform/cache";
import { eventually } from "@bazaar/testkit/eventually";
import { getJson, repoRoot } from "@bazaar/testkit/fixtures";
import { PrivateRedis } from "@bazaar/testkit/private-servers";
import { type DevInstance, startDevInstance } from "../scripts/dev-instance.ts";

const ARTIFACTS = `${repoRoot}/test-artifacts`;
const PASSWORD = "correct horse battery staple";

let redis: PrivateRedis | undefined;
let platform: DevInstance | undefined;
let browser: Browser | undefined;

beforeAll(async () => {
  redis = await PrivateRedis.create();
  platform = await startDevInstance({ instancePrefix: "lostcart", env: { REDIS_URL: redis.url } });
  browser = await launchChromium();
}, 120_000);

afterAll(async () => {
  await browser?.close().catch(() => {});
  await platform?.cleanup();
  await redis?.destroy();
}, 60_000);

/** Two products with a few units in stock (inventory learns of products from events: it waits for them). */
async function twoStockedProducts(): Promise<{ id: string; name: string }[]> {
  const { products } = await getJson<{ products: { id: string; name: string }[] }>(`${platform!.bffUrl}/api/products?pageSize=24`);
  return eventually(
    async () => {
      const picked: { id: string; name: string }[] = [];
      for (const p of products) {
        const { stock } = await getJson<{ stock: { available: number } }>(`${platform!.bffUrl}/api/products/${p.id}`);
        if (stock.available >= 5) picked.push(p);
        if (picked.length === 2) return picked;
      }
      return undefined;
    },
    { what: "two products with 5+ units in stock", timeoutMs: 20_000 },
  );
}

/** Everything Redis holds is gone at once (as a restart of a Redis without persistence). */
async function loseEverything(): Promise<void> {
  const admin = await connectRedis(redis!.url, "");
  try {
    await admin.client.flushAll();
  } finally {
    await admin.close();
  }
}

/** Signs a new shopper up through the form; returns their email. */
async function signUp(page: Page, name: string): Promise<string> {
  const email = `lost-cart-${Date.now()}-${Math.random().toString(36).slice(2, 8)}@example.test`;
  await page.goto(`${platform!.bffUrl}/signup`);
  const form = page.locator("[data-testid=signup-form]");
  await form.waitFor({ timeout: 10_000 });
  await form.locator("input[name=displayName]").fill(name);
  await form.locator("input[name=email]").fill(email);
  await form.locator("input[name=password]").fill(PASSWORD);
  await page.click("[data-testid=signup-submit]");
  await page.locator("[data-testid=user-menu-button]").waitFor({ timeout: 15_000 });
  return email;
}

async function fillSignIn(page: Page, email: string): Promise<void> {
  const form = page.locator("[data-testid=signin-form]");
  await form.waitFor({ timeout: 10_000 });
  await form.locator("input[name=email]").fill(email);
  await form.locator("input[name=password]").fill(PASSWORD);
  await page.click("[data-testid=signin-submit]");
}

async function addToCart(page: Page, productId: string, quantity: number): Promise<void> {
  await page.goto(`${platform!.bffUrl}/products/${productId}`);
  await page.locator("[data-testid=product-page]").waitFor({ timeout: 10_000 });
  for (let i = 1; i < quantity; i++) await page.click("[data-testid=quantity-inc]");
  await page.click("[data-testid=add-to-cart]");
  await page.locator("[data-testid=add-result].ok").waitFor({ timeout: 10_000 });
}

/** The cart page's lines: product id → units. */
const cartLines = (page: Page) =>
  page.$$eval("[data-testid=cart-line]", (els) =>
    Object.fromEntries(
      els.map((li) => [li.getAttribute("data-product"), Number((li.querySelector("input[data-testid=cart-qty]") as HTMLInputElement | null)?.value)]),
    ),
  );

describe("a Redis that lost everything, in the storefront", () => {
  test("the shopper is sent to sign in and back to the cart, which shows what was lost and puts it back; after a real checkout the empty cart is not called lost", async () => {
    const context = await browser!.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    const serverErrors: string[] = [];
    page.on("response", (res) => {
      if (res.status() >= 500) serverErrors.push(`HTTP ${res.status()} for ${res.request().method()} ${res.url()}`);
    });
    page.on("pageerror", (err) => serverErrors.push(`page error: ${err.message}`));
    try {
      const [a, b] = await twoStockedProducts();
      const email = await signUp(page, "Lost Cart Shopper");

      await addToCart(page, a!.id, 2);
      await addToCart(page, b!.id, 1);
      await page.goto(`${platform!.bffUrl}/cart`);
      await page.locator("[data-testid=cart-line]").nth(1).waitFor({ timeout: 10_000 });
      expect(await cartLines(page)).toEqual({ [a!.id]: 2, [b!.id]: 1 });
      expect(await page.locator("[data-testid=cart-lost]").count()).toBe(0);

      await loseEverything();
      const lostAt = performance.now();
      await page.reload();
      // The session is gone: sign in, and come back to the cart.
      await page.waitForURL(/\/signin\?next=%2Fcart$/, { timeout: 10_000 });
      await fillSignIn(page, email);
      await page.waitForURL(/\/cart$/, { timeout: 15_000 });
      const notice = page.locator("[data-testid=cart-lost]");
      await notice.waitFor({ timeout: 10_000 });
      expect(await notice.getAttribute("data-lines")).toBe("2");
      expect(await notice.textContent()).toContain("lost 3 items");
      expect(await page.locator("[data-testid=cart-empty]").count()).toBe(1);
      // The header says so on every page until the items are put back or dismissed.
      expect(await page.locator("[data-testid=cart-lost-badge]").isVisible()).toBe(true);
      mkdirSync(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: `${ARTIFACTS}/lost-cart-notice.png` });
      console.log(`lost cart shown ${(performance.now() - lostAt).toFixed(0)} ms after Redis lost everything (sign-in included)`);

      await page.click("[data-testid=cart-restore]");
      await page.locator("[data-testid=cart-restored]").waitFor({ timeout: 10_000 });
      expect(await page.locator("[data-testid=cart-restored]").getAttribute("data-units")).toBe("3");
      expect(await cartLines(page)).toEqual({ [a!.id]: 2, [b!.id]: 1 });
      expect(await page.locator("[data-testid=cart-lost]").count()).toBe(0);
      expect(await page.locator("[data-testid=cart-lost-badge]").isVisible()).toBe(false);
      expect(await page.locator("[data-testid=cart-count]").textContent()).toBe("3");
      // Restored on the server, not only on the page.
      await page.reload();
      await page.locator("[data-testid=cart-line]").nth(1).waitFor({ timeout: 10_000 });
      expect(await cartLines(page)).toEqual({ [a!.id]: 2, [b!.id]: 1 });
      expect(await page.locator("[data-testid=cart-lost]").count()).toBe(0);

      // A real checkout empties the cart on purpose: no "lost" notice afterwards.
      await page.click("[data-testid=checkout]");
      await page.locator("[data-testid=checkout-form]").waitFor({ timeout: 10_000 });
      await page.fill("[data-testid=card-number]", "4242 4242 4242 4242");
      await page.fill("[data-testid=card-cvc]", "123");
      await page.click("[data-testid=place-order]");
      await page.locator("[data-testid=order-status][data-status=CONFIRMED]").waitFor({ timeout: 30_000 });
      await eventually(
        async () => {
          await page.goto(`${platform!.bffUrl}/cart`);
          await page.locator("[data-testid=cart-empty], [data-testid=cart-line]").first().waitFor({ timeout: 10_000 });
          return (await page.locator("[data-testid=cart-empty]").count()) === 1;
        },
        { what: "the cart to be emptied by the confirmed order", timeoutMs: 20_000 },
      );
      expect(await page.locator("[data-testid=cart-lost]").count()).toBe(0);
      expect(serverErrors).toEqual([]);
    } finally {
      mkdirSync(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: `${ARTIFACTS}/lost-cart.png`, fullPage: true }).catch(() => {});
      await context.close().catch(() => {});
    }
  }, 120_000);

  test("a shopper who does not want the lost items back says so once, and the cart stops offering them", async () => {
    const context = await browser!.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    try {
      const [a] = await twoStockedProducts();
      const email = await signUp(page, "Dismissing Shopper");
      await addToCart(page, a!.id, 1);
      await page.goto(`${platform!.bffUrl}/cart`);
      await page.locator("[data-testid=cart-line]").waitFor({ timeout: 10_000 });

      await loseEverything();
      await page.reload();
      await page.waitForURL(/\/signin\?next=%2Fcart$/, { timeout: 10_000 });
      await fillSignIn(page, email);
      await page.locator("[data-testid=cart-lost]").waitFor({ timeout: 15_000 });
      await page.click("[data-testid=cart-lost-dismiss]");
      await page.locator("[data-testid=cart-empty]").waitFor({ timeout: 10_000 });
      expect(await page.locator("[data-testid=cart-lost]").count()).toBe(0);
      expect(await page.locator("[data-testid=cart-lost-badge]").isVisible()).toBe(false);
      await page.reload();
      await page.locator("[data-testid=cart-empty]").waitFor({ timeout: 10_000 });
      expect(await page.locator("[data-testid=cart-lost]").count()).toBe(0);
    } finally {
      await context.close().catch(() => {});
    }
  }, 120_000);
});
