/**
 * End to end: `bun run dev` starts the whole platform from nothing (a fresh instance, its own
 * ports and databases), headless Chromium uses the storefront as a shopper would, and Ctrl-C
 * stops everything cleanly.
 */
import { serviceCatalog } from "@bazaar/platform/service-catalog";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync } from "node:fs";
import type { Browser, Page } from "playwright-core";
import { launchChromium } from "@bazaar/testkit/chromium";
import { getJson, repoRoot } from "@bazaar/testkit/fixtures";
import { type DevInstance, isListening, processesOfInstance, startDevInstance } from "../scripts/dev-instance.ts";

interface ApiProduct {
  id: string;
  name: string;
  description: string;
  categoryId: string;
  price: { display: string; amountMinor: number; currency: string };
}
interface ApiPage {
  products: ApiProduct[];
  total: number;
  nextPageToken: string | null;
}
interface Card {
  id: string;
  href: string;
  name: string;
  price: string;
}

const SCREENSHOT = `${repoRoot}/test-artifacts/storefront-search.png`;

let platform: DevInstance | undefined;
let browser: Browser | undefined;

/** The BFF's JSON API, as the page sees it. */
const api = <T>(path: string) => getJson<T>(`${platform!.bffUrl}${path}`);

/** Every product matching a listing (all pages). */
async function allProducts(params: Record<string, string>): Promise<ApiPage> {
  const products: ApiProduct[] = [];
  let token = "";
  let total = 0;
  do {
    const qs = new URLSearchParams({ ...params, pageSize: "100", ...(token ? { pageToken: token } : {}) });
    const page = await api<ApiPage>(`/api/products?${qs}`);
    products.push(...page.products);
    total = page.total;
    token = page.nextPageToken ?? "";
  } while (token);
  return { products, total, nextPageToken: null };
}

/** Waits until the catalog view has finished loading and shows `cards` cards (or the empty state). */
async function catalogSettled(page: Page, expected: { cards: number; status: string | RegExp }): Promise<void> {
  const status = typeof expected.status === "string" ? expected.status : expected.status.source;
  const isRegex = typeof expected.status !== "string";
  try {
    await page.waitForFunction(
      ({ cards, status, isRegex }) => {
        const text = document.getElementById("results-status")?.textContent ?? "";
        const busy = document.querySelector("ul.grid")?.getAttribute("aria-busy") === "true";
        const count = document.querySelectorAll("[data-testid=product-card]").length;
        const statusOk = isRegex ? new RegExp(status).test(text) : text.includes(status);
        const emptyOk = cards > 0 || document.querySelector("[data-testid=empty]") !== null;
        return !busy && count === cards && statusOk && emptyOk;
      },
      { cards: expected.cards, status, isRegex },
      { timeout: 10_000 },
    );
  } catch (err) {
    const state = await page.evaluate(() => ({
      url: location.href,
      status: document.getElementById("results-status")?.textContent,
      cards: document.querySelectorAll("[data-testid=product-card]").length,
      main: document.getElementById("main")?.textContent?.slice(0, 500),
    }));
    throw new Error(`catalog did not show ${expected.cards} cards with status ${String(expected.status)}: ${JSON.stringify(state)}\n${(err as Error).message}`);
  }
}

async function readCards(page: Page): Promise<Card[]> {
  const cards = await page.$$eval("[data-testid=product-card]", (els) =>
    els.map((a) => ({
      href: a.getAttribute("href") ?? "",
      name: a.querySelector(".card-name")?.textContent ?? "",
      price: a.querySelector(".card-price")?.textContent ?? "",
    })),
  );
  return cards.map((c) => ({ ...c, id: /^\/products\/([\w-]+)$/.exec(c.href)?.[1] ?? "" }));
}

describe("storefront, end to end through `bun run dev`", () => {
  beforeAll(async () => {
    platform = await startDevInstance({ instancePrefix: "e2e" });
    browser = await launchChromium();
  }, 90_000);

  afterAll(async () => {
    await browser?.close().catch(() => {});
    await platform?.cleanup();
  }, 60_000);

  test("the dev runner started a fresh instance from nothing", () => {
    const out = platform!.output();
    expect(out).toContain(`created database database=${platform!.databases[0]}`);
    expect(out).toContain("seeded the demo catalog categories=6 products=72");
    expect(out).toContain(`Web storefront   ${platform!.bffUrl}`);
  });

  test("browse, search, filter by category, find nothing, open a product", async () => {
    const context = await browser!.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    const problems: string[] = [];
    page.on("console", (msg) => {
      if (msg.type() === "error") problems.push(`console error: ${msg.text()} (${msg.location().url})`);
    });
    page.on("pageerror", (err) => problems.push(`page error: ${err.message}`));
    page.on("response", (res) => {
      if (res.status() >= 400) problems.push(`HTTP ${res.status()} for ${res.url()}`);
    });

    try {
      // 1. The first page lists the catalog: 24 cards of 72.
      await page.goto(`${platform!.bffUrl}/`);
      await catalogSettled(page, { cards: 24, status: "72 products, showing 24" });
      const { categories } = await api<{ categories: { id: string; name: string; productCount: number }[] }>("/api/categories");
      expect(categories.map((c) => c.id).sort()).toEqual(["audio", "coffee-tea", "desk-stationery", "home-textiles", "kitchen", "outdoor"]);
      expect(await page.locator("nav.chips a").count()).toBe(1 + categories.length);
      expect(await page.locator('nav.chips a[aria-current="page"]').textContent()).toBe("All");
      const firstCards = await readCards(page);
      const firstPage = await api<ApiPage>("/api/products?pageSize=24");
      expect(firstCards.map((c) => c.id)).toEqual(firstPage.products.map((p) => p.id));

      // 2. Search "wool" with the search box and Enter.
      const wool = await allProducts({ q: "wool" });
      expect(wool.total).toBeGreaterThan(1);
      expect(wool.total).toBeLessThan(72);
      expect(wool.total).toBeLessThanOrEqual(24); // so one page shows them all
      await page.fill("#search", "wool");
      await page.press("#search", "Enter");
      await catalogSettled(page, { cards: wool.total, status: `${wool.total} product${wool.total === 1 ? "" : "s"} matching “wool”` });
      const url = new URL(page.url());
      expect(url.pathname).toBe("/");
      expect(url.searchParams.get("q")).toBe("wool");
      expect(await page.inputValue("#search")).toBe("wool");
      const woolCards = await readCards(page);
      expect(woolCards.map((c) => c.id).sort()).toEqual(wool.products.map((p) => p.id).sort());
      for (const card of woolCards) {
        const { product } = await api<{ product: ApiProduct }>(`/api/products/${card.id}`);
        expect(`${product.name} ${product.description}`).toMatch(/\bwool/i);
        expect(card.name).toBe(product.name);
        expect(card.price).toBe(product.price.display);
      }

      // 3. A category chip narrows the search to that category (keeping q).
      const byCategory = Map.groupBy(wool.products, (p) => p.categoryId);
      expect(byCategory.size).toBeGreaterThan(1);
      const [categoryId, inCategory] = [...byCategory.entries()].sort((a, b) => b[1].length - a[1].length)[0]!;
      const categoryName = categories.find((c) => c.id === categoryId)!.name;
      await page.click(`nav.chips a[href*="category=${categoryId}"]`);
      await catalogSettled(page, { cards: inCategory.length, status: `${inCategory.length} product${inCategory.length === 1 ? "" : "s"} matching “wool”` });
      const narrowed = new URL(page.url());
      expect(narrowed.searchParams.get("category")).toBe(categoryId);
      expect(narrowed.searchParams.get("q")).toBe("wool");
      expect(await page.locator('nav.chips a[aria-current="page"]').textContent()).toBe(categoryName);
      const categoryCards = await readCards(page);
      expect(categoryCards.length).toBeLessThan(woolCards.length);
      expect(categoryCards.map((c) => c.id).sort()).toEqual(inCategory.map((p) => p.id).sort());
      for (const card of categoryCards) {
        const { product } = await api<{ product: ApiProduct }>(`/api/products/${card.id}`);
        expect(product.categoryId).toBe(categoryId);
        expect(`${product.name} ${product.description}`).toMatch(/\bwool/i);
      }

      // 4. A search that matches nothing shows the empty state.
      const nonsense = "qzxvjk";
      expect((await api<ApiPage>(`/api/products?q=${nonsense}`)).total).toBe(0);
      await page.fill("#search", nonsense);
      await page.press("#search", "Enter");
      await catalogSettled(page, { cards: 0, status: /^$/ });
      expect(new URL(page.url()).searchParams.get("q")).toBe(nonsense);
      const empty = page.locator("[data-testid=empty]");
      expect(await empty.isVisible()).toBe(true);
      expect(await empty.textContent()).toContain(`No products match “${nonsense}”`);

      // 5. Back to everything, then a card opens its product page with the same price.
      await empty.locator("a", { hasText: "See all products" }).click();
      await catalogSettled(page, { cards: 24, status: "72 products, showing 24" });
      const cards = await readCards(page);
      const card = cards[5]!;
      await page.click(`[data-testid=product-card][href="${card.href}"]`);
      await page.locator("[data-testid=product-page]").waitFor({ timeout: 10_000 });
      expect(new URL(page.url()).pathname).toBe(`/products/${card.id}`);
      expect(await page.locator("[data-testid=product-page] h1").textContent()).toBe(card.name);
      expect(await page.locator("[data-testid=price]").textContent()).toBe(card.price);
      const { product } = await api<{ product: ApiProduct }>(`/api/products/${card.id}`);
      expect(card.price).toBe(product.price.display);
      expect(await page.title()).toBe(`${card.name} · Bazaar`);
    } finally {
      mkdirSync(`${repoRoot}/test-artifacts`, { recursive: true });
      await page.screenshot({ path: SCREENSHOT, fullPage: true }).catch(() => {});
      await context.close();
    }

    expect(problems).toEqual([]);
  });

  // Runs last: it stops the platform the other tests use.
  test("Ctrl-C (SIGINT) stops every process and the runner exits 0", async () => {
    const { ports, instance } = platform!;
    const listening = [ports.catalog!.http, ports.catalog!.grpc!, ports.bff!.http];
    for (const port of listening) expect(await isListening(port)).toBe(true);
    const childPids = processesOfInstance(instance);
    expect(childPids.length).toBeGreaterThanOrEqual(3); // the runner and its two children

    const started = performance.now();
    const code = await platform!.stop();
    const ms = performance.now() - started;

    expect(code).toBe(0);
    expect(ms).toBeLessThan(15_000);
    expect(platform!.output()).toContain(`stopped (exit codes: ${serviceCatalog.map((e) => `${e.name}=0`).join(", ")})`);
    for (const port of listening) expect(await isListening(port)).toBe(false);
    expect(processesOfInstance(instance)).toEqual([]);
  });
});
