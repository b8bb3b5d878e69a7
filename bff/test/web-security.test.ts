import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Hono } from "hono";
import type { Browser, Page } from "playwright-core";
import { launchChromium } from "@bazaar/testkit/chromium";
import { connectRedis, type RedisConnection } from "@bazaar/platform/cache";
import { configureLogging } from "@bazaar/platform/log";
import { eventually } from "@bazaar/testkit/eventually";
import { type LaunchedProcess, launchProcess, testEnv, testRedisPrefix } from "@bazaar/testkit/fixtures";
import { type AppOptions, createApp } from "../src/app.ts";
import { type CatalogClient, createCatalogClient } from "../src/upstreams/catalog.ts";
import { createIdentityClient, type IdentityClient } from "../src/upstreams/identity.ts";
import { buildWeb, type WebBundle } from "../src/web.ts";
import { type ApiErrorBody, body, overHttp, TestBrowser } from "./support/browser.ts";

// What an outside black-box test of the storefront found (issue 9): the BFF's answers as a
// browser and an attacker's page see them. The BFF is served over HTTP (so it has a peer
// address), with a real identity and catalog, Redis for sessions, and headless Chromium.

let identityProcess: LaunchedProcess;
let catalogProcess: LaunchedProcess;
let identity: IdentityClient;
let catalog: CatalogClient;
let redis: RedisConnection;
const prefix = testRedisPrefix();
let web: WebBundle;
let browser: Browser;
const servers: ReturnType<typeof Bun.serve>[] = [];

beforeAll(async () => {
  configureLogging("bff-test", "error");
  [identityProcess, catalogProcess] = await Promise.all([launchProcess("identity"), launchProcess("catalog")]);
  identity = createIdentityClient(identityProcess.grpcAddress, 5_000);
  catalog = createCatalogClient(catalogProcess.grpcAddress, 5_000);
  redis = await connectRedis(testEnv.REDIS_URL, prefix.prefix);
  web = await buildWeb();
  browser = await launchChromium();
}, 90_000);

afterAll(async () => {
  for (const server of servers) server.stop(true);
  await browser?.close().catch(() => {});
  identity?.close();
  catalog?.close();
  await prefix.clear().catch(() => {});
  await redis?.close();
  await Promise.all([identityProcess?.cleanup(), catalogProcess?.cleanup()]);
}, 60_000);

/** A BFF with the web UI, identity and catalog; `options` on top. */
function bff(options: Partial<AppOptions> = {}): Hono {
  return createApp({ upstreams: { identity, catalog }, redis, web, ...options });
}

/** Serves an app on 127.0.0.1 (a free port); answers its origin. */
function serve(app: Hono): string {
  const server = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: app.fetch, idleTimeout: 30 });
  servers.push(server);
  return `http://127.0.0.1:${server.port}`;
}

/** A page of a new browser context signed in as a new customer of the BFF at `origin`. */
async function signedInPage(origin: string): Promise<Page> {
  const shopper = new TestBrowser(overHttp(origin));
  await shopper.signUp("Redirect Target");
  const context = await browser.newContext();
  await context.addCookies([...shopper.cookies].map(([name, value]) => ({ name, value, url: origin })));
  return context.newPage();
}

// Tab, line feed, carriage return: the URL parser drops them, so "/\t/evil.example/" is "//evil.example/".
const strippedCharacters = ["%09", "%0a", "%0d"];

describe("sign-in's next", () => {
  test("open redirect: /signin?next=/%09/evil.example/ (and %0a, %0d) never yields a link to another origin", async () => {
    const origin = serve(bff());
    const page = await signedInPage(origin);
    try {
      for (const ch of strippedCharacters) {
        const attack = `/signin?next=/${ch}/evil.example/`;
        // The server drops a next that leaves the site before the page is served…
        const res = await fetch(`${origin}${attack}`, { redirect: "manual", signal: AbortSignal.timeout(5_000) });
        expect(res.status).toBe(302);
        expect(res.headers.get("location")).toBe("/signin");
        // …and the page, reached without the server (the router's own navigation), resolves it against its origin.
        await page.goto(`${origin}/`);
        await page.locator("[data-testid=user-menu-button]").waitFor({ timeout: 10_000 });
        await page.evaluate((url) => {
          history.pushState(null, "", url);
          dispatchEvent(new PopStateEvent("popstate"));
        }, attack);
        const link = page.locator(".notice a.button", { hasText: "Continue" });
        await link.waitFor({ timeout: 10_000 });
        const href = await link.evaluate((a) => (a as HTMLAnchorElement).href);
        expect(new URL(href).origin).toBe(origin);
      }
      // A next on the site is kept, by both.
      const res = await fetch(`${origin}/signin?next=%2Forders`, { redirect: "manual", signal: AbortSignal.timeout(5_000) });
      expect(res.status).toBe(200);
      await page.goto(`${origin}/signin?next=%2Forders`);
      const link = page.locator(".notice a.button", { hasText: "Continue" });
      await link.waitFor({ timeout: 10_000 });
      expect(await link.evaluate((a) => (a as HTMLAnchorElement).href)).toBe(`${origin}/orders`);
    } finally {
      await page.context().close();
    }
  }, 60_000);
});

describe("security headers", () => {
  test("framing: another origin cannot frame the sign-in or checkout page; pages carry CSP, nosniff and a Referrer-Policy", async () => {
    const origin = serve(bff());
    for (const path of ["/", "/signin", "/checkout", "/api/session"]) {
      const res = await fetch(`${origin}${path}`, { signal: AbortSignal.timeout(5_000) });
      const csp = res.headers.get("content-security-policy") ?? "";
      expect(csp).toContain("frame-ancestors 'none'");
      expect(csp).toContain("script-src 'self'");
      expect(csp).toContain("object-src 'none'");
      expect(res.headers.get("x-frame-options")).toBe("DENY");
      expect(res.headers.get("x-content-type-options")).toBe("nosniff");
      expect(res.headers.get("referrer-policy")).toBe("same-origin");
      await res.body?.cancel();
    }
    // An attacker's page framing the sign-in and checkout pages gets nothing drawn in the frames.
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      await page.route("http://evil.test/**", (route) =>
        route.fulfill({ contentType: "text/html", body: `<iframe src="${origin}/signin"></iframe><iframe src="${origin}/checkout"></iframe>` }),
      );
      await page.goto("http://evil.test/");
      await page.waitForTimeout(0);
      const framed = page.frames().filter((f) => f !== page.mainFrame());
      expect(framed).toHaveLength(2);
      for (const frame of framed) {
        await frame.waitForLoadState("load", { timeout: 10_000 }).catch(() => {});
        expect(await frame.locator("[data-testid=signin-form]").count()).toBe(0);
        expect(frame.url().startsWith(origin)).toBe(false);
      }
    } finally {
      await context.close();
    }
  }, 60_000);

  test("the UI runs under its CSP with no violations: catalog, product, sign-in, sign-up, checkout", async () => {
    const origin = serve(bff());
    const page = await signedInPage(origin);
    const violations: string[] = [];
    page.on("console", (msg) => {
      if (/content security policy|refused to/i.test(msg.text())) violations.push(msg.text());
    });
    await page.addInitScript(() => {
      document.addEventListener("securitypolicyviolation", (e) => console.error(`Refused to load: CSP ${e.violatedDirective} blocked ${e.blockedURI}`));
    });
    try {
      await page.goto(`${origin}/`);
      await page.locator("[data-testid=product-card] img").first().waitFor({ timeout: 10_000 });
      // Every image of the catalog's first page loaded (none blocked).
      await page.waitForFunction(() => [...document.querySelectorAll("img")].every((img) => img.complete && img.naturalWidth > 0), undefined, {
        timeout: 10_000,
      });
      const productHref = await page.locator("[data-testid=product-card]").first().getAttribute("href");
      await page.click("[data-testid=product-card]");
      await page.waitForURL(`${origin}${productHref}`);
      for (const path of ["/signin", "/signup", "/checkout", "/orders", "/no-such-page"]) {
        await page.goto(`${origin}${path}`);
        await page.locator("#main .page").waitFor({ timeout: 10_000 });
      }
      expect(await page.evaluate(() => getComputedStyle(document.querySelector(".topbar")!).display)).not.toBe("inline");
      expect(violations).toEqual([]);
    } finally {
      await page.context().close();
    }
  }, 60_000);
});

describe("cookies over TLS", () => {
  const setCookies = async (origin: string, headers: Record<string, string>) => {
    const res = await fetch(`${origin}/api/session`, { headers, signal: AbortSignal.timeout(5_000) });
    expect(res.status).toBe(200);
    await res.body?.cancel();
    return res.headers.getSetCookie();
  };

  test("cookies without Secure behind TLS: X-Forwarded-Proto https from a trusted proxy makes them Secure", async () => {
    const behindGateway = serve(bff({ trustedProxies: ["127.0.0.0/8"] }));
    const overTls = await setCookies(behindGateway, { "x-forwarded-proto": "https" });
    expect(overTls.length).toBeGreaterThan(0);
    for (const cookie of overTls) expect(cookie).toMatch(/;\s*Secure/i);
    // Signing up over TLS: the session cookie is Secure too.
    const seen: string[] = [];
    const shopper = new TestBrowser({
      request: async (path, init) => {
        const headers = { ...(init.headers as Record<string, string>), "x-forwarded-proto": "https" };
        const res = await fetch(new URL(path, behindGateway), { ...init, headers, signal: AbortSignal.timeout(10_000) });
        seen.push(...res.headers.getSetCookie());
        return res;
      },
    });
    await shopper.signUp("Secure Cookie");
    expect(seen.find((c) => c.startsWith("bazaar_session="))).toMatch(/;\s*Secure/i);
    // Plain http through the same proxy: not Secure (the browser would not send them back otherwise).
    for (const cookie of await setCookies(behindGateway, { "x-forwarded-proto": "http" })) expect(cookie).not.toMatch(/;\s*Secure/i);
  });

  test("a forged X-Forwarded-Proto from an untrusted peer does not count", async () => {
    const elsewhere = serve(bff({ trustedProxies: ["10.0.0.0/8"] }));
    for (const cookie of await setCookies(elsewhere, { "x-forwarded-proto": "https" })) expect(cookie).not.toMatch(/;\s*Secure/i);
    // COOKIE_SECURE still forces them.
    const forced = serve(bff({ secureCookies: true }));
    for (const cookie of await setCookies(forced, {})) expect(cookie).toMatch(/;\s*Secure/i);
  });
});

describe("GET /api/events", () => {
  /** Opens `count` streams for `shopper`; answers the responses (streams left open). */
  const openStreams = (app: Hono, shopper: TestBrowser, count: number) =>
    Promise.all(Array.from({ length: count }, () => app.request("/api/events", { headers: { cookie: shopper.cookieHeader() } })));
  const closeAll = async (responses: Response[]) => {
    for (const res of responses) await res.body?.cancel().catch(() => {});
  };

  test("200 event streams from one session: past the per-session cap each is a 429 with the API's error JSON", async () => {
    const app = bff();
    const shopper = new TestBrowser(app);
    await shopper.signUp("Stream Hog");
    const responses = await openStreams(app, shopper, 200);
    try {
      const accepted = responses.filter((r) => r.status === 200);
      const refused = responses.filter((r) => r.status === 429);
      expect(accepted).toHaveLength(8);
      expect(refused).toHaveLength(192);
      const error = await body<ApiErrorBody>(refused[0]!);
      expect(error.error.code).toBe("too_many_streams");
      expect(error.error.message).toContain("8 live-update streams");
      expect(refused[0]!.headers.get("content-type")).toContain("application/json");
      // Closing streams frees their places.
      await closeAll(accepted);
      await closeAll([await waitForStream(app, shopper)]);
    } finally {
      await closeAll(responses);
    }
  }, 30_000);

  test("streams from many sessions: past the per-process cap each is a 429 with the API's error JSON", async () => {
    const app = bff({ events: { maxPerSession: 3, maxOpen: 5 } });
    const first = new TestBrowser(app);
    const second = new TestBrowser(app);
    await first.signUp("Stream One");
    await second.signUp("Stream Two");
    const mine = await openStreams(app, first, 3);
    const theirs = await openStreams(app, second, 3);
    try {
      expect(mine.map((r) => r.status)).toEqual([200, 200, 200]);
      expect(theirs.map((r) => r.status).sort()).toEqual([200, 200, 429]);
      const refused = theirs.find((r) => r.status === 429)!;
      expect((await body<ApiErrorBody>(refused)).error).toMatchObject({ code: "too_many_streams", message: expect.stringContaining("try again") });
      expect(refused.headers.get("retry-after")).toBe("30");
    } finally {
      await closeAll([...mine, ...theirs]);
    }
  }, 30_000);
});

/** Opens a stream once the places of closed ones are released (bounded by eventually's deadline). */
function waitForStream(app: Hono, shopper: TestBrowser): Promise<Response> {
  return eventually(
    async () => {
      const res = await app.request("/api/events", { headers: { cookie: shopper.cookieHeader() } });
      if (res.status === 200) return res;
      await res.body?.cancel();
      return undefined;
    },
    { what: "a stream's place to be free again", timeoutMs: 5_000 },
  );
}
