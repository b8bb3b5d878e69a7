import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { connectRedis } from "@bazaar/platform/cache";
import { configureLogging } from "@bazaar/platform/log";
import { freePort, testEnv } from "@bazaar/testkit/fixtures";
import { createApp } from "../src/app.ts";
import { type SessionRecord, sessionRedisKey } from "../src/session-store.ts";
import { createIdentityClient, type IdentityClient } from "../src/upstreams/identity.ts";
import { type BffTestPlatform, startBffTestPlatform } from "./support/bff-platform.ts";
import { type ApiErrorBody, body, demoAdmin, overHttp, TestBrowser } from "./support/browser.ts";
import type { BffReplica } from "./support/bff-platform.ts";

// Sessions, CSRF and access control of the BFF, against every service as a real process. Identity
// issues 30-second access tokens (its minimum), so tokens are refreshed for real.
let env: BffTestPlatform;

beforeAll(async () => {
  configureLogging("bff-test", "error");
  env = await startBffTestPlatform({ identity: { ACCESS_TOKEN_TTL_SECONDS: "30" } });
}, 90_000);

afterAll(async () => {
  for (const server of servers) await server.stop(true);
  await env?.cleanup();
}, 60_000);

const browser = () => new TestBrowser(env.bff.app);

/** A replica served over real HTTP on 127.0.0.1 (so that it sees a peer address), stopped after the run. */
function serveReplica(replica: BffReplica): ReturnType<typeof Bun.serve> {
  const server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: replica.app.fetch });
  servers.push(server);
  return server;
}
const servers: ReturnType<typeof Bun.serve>[] = [];

/** The session record behind a browser's cookie, straight from Redis. */
async function storedSession(b: TestBrowser): Promise<{ key: string; record: SessionRecord }> {
  const key = sessionRedisKey(env.redis.keyPrefix, b.cookies.get("bazaar_session")!);
  const text = await env.redis.client.get(key);
  if (!text) throw new Error("no session in Redis");
  return { key, record: JSON.parse(text) as SessionRecord };
}

/** Rewrites a browser's session in Redis (as time passing, or a token going bad, would). */
async function alterSession(b: TestBrowser, change: Partial<SessionRecord>): Promise<void> {
  const { key, record } = await storedSession(b);
  await env.redis.client.set(key, JSON.stringify({ ...record, ...change }), { expiration: "KEEPTTL" });
}

/** An identity client that counts Refresh calls. */
function countingRefreshes(identity: IdentityClient): { client: IdentityClient; count: () => number } {
  let n = 0;
  return {
    client: {
      ...identity,
      refresh: (req, options) => {
        n++;
        return identity.refresh(req, options);
      },
    },
    count: () => n,
  };
}

describe("signing up, in and out", () => {
  test("GET /api/session before signing in: no user, and a CSRF token set as a readable cookie", async () => {
    const b = browser();
    const res = await b.get("/api/session");
    expect(res.status).toBe(200);
    const json = await body<{ user: null; csrfToken: string }>(res);
    expect(json.user).toBeNull();
    expect(json.csrfToken).toMatch(/^[\w-]{43}$/);
    const cookie = res.headers.getSetCookie().find((c) => c.startsWith("bazaar_csrf="))!;
    expect(cookie).toContain(`bazaar_csrf=${json.csrfToken}`);
    expect(cookie).not.toContain("HttpOnly");
    expect(cookie).toContain("SameSite=Lax");
    // The same token while the cookie lives.
    expect((await b.open()).csrfToken).toBe(json.csrfToken);
  });

  test("sign-up answers 202 and starts no session; signing in then gives the new user an httpOnly session cookie, and /api/session knows them", async () => {
    const b = browser();
    await b.open();
    const email = `new-${crypto.randomUUID().slice(0, 8)}@example.com`;
    const signUp = await b.post("/api/auth/signup", { email, password: "correct horse battery", displayName: "Ada" });
    expect(signUp.status).toBe(202);
    expect(b.cookies.has("bazaar_session")).toBe(false);
    const res = await b.post("/api/auth/signin", { email, password: "correct horse battery" });
    expect(res.status).toBe(200);
    const { user } = await body<{ user: { id: string; email: string; displayName: string; roles: string[] } }>(res);
    expect(user).toMatchObject({ email, displayName: "Ada", roles: ["customer"] });
    const cookie = res.headers.getSetCookie().find((c) => c.startsWith("bazaar_session="))!;
    expect(cookie).toContain("HttpOnly");
    expect(cookie).toContain("SameSite=Lax");
    expect(cookie).toContain("Path=/");
    expect(cookie).toMatch(/Max-Age=\d+/);
    // The cookie holds only a random id; the tokens stay in Redis.
    expect(b.cookies.get("bazaar_session")).toMatch(/^[\w-]{43}$/);
    expect((await storedSession(b)).record.user.id).toBe(user.id);
    expect((await b.open()).user?.id).toBe(user.id);
  });

  test("sign-up cannot tell whether an email has an account: a taken email is answered exactly as a free one, and the account is left as it was", async () => {
    const owner = { email: `owner-${crypto.randomUUID().slice(0, 8)}@example.com` };
    await env.bff.upstreams.identity.register({ ...owner, password: "correct horse battery", displayName: "Owner" });
    const answer = async (email: string) => {
      const b = browser();
      await b.open();
      const res = await b.post("/api/auth/signup", { email, password: "another long password", displayName: "Someone Else" });
      return { status: res.status, body: await res.text(), session: b.cookies.has("bazaar_session") };
    };
    const taken = await answer(owner.email.toUpperCase());
    const free = await answer(`free-${crypto.randomUUID().slice(0, 8)}@example.com`);
    expect(taken).toEqual(free);
    expect(taken.status).toBe(202);
    expect(taken.body).not.toContain("exists");
    // The owner's password still works, the prober's does not.
    expect((await browser().signIn(owner.email, "correct horse battery")).status).toBe(200);
    expect((await browser().signIn(owner.email, "another long password")).status).toBe(401);
  });

  test("sign-in with the right password starts a new session; a wrong one is a 401 and no session", async () => {
    const first = browser();
    const user = await first.signUp("Grace");
    const b = browser();
    const wrong = await b.signIn(user.email, "not the password");
    expect(wrong.status).toBe(401);
    expect((await body<ApiErrorBody>(wrong)).error.code).toBe("unauthenticated");
    expect(b.cookies.has("bazaar_session")).toBe(false);
    const right = await b.signIn(user.email, "correct horse battery");
    expect(right.status).toBe(200);
    expect((await body<{ user: { id: string } }>(right)).user.id).toBe(user.id);
    expect(b.cookies.get("bazaar_session")).not.toBe(first.cookies.get("bazaar_session"));
  });

  test("an attacker's wrong passwords from another address do not lock a shopper out of signing in", async () => {
    const user = await browser().signUp("Owner");
    // The BFF served over HTTP behind "the gateway" at 127.0.0.1, which appends the address it saw to X-Forwarded-For.
    const server = serveReplica(await env.replica({ trustedProxies: ["127.0.0.0/8"] }));
    const signIn = async (address: string, password: string) => {
      const b = new TestBrowser(overHttp(server.url.href));
      await b.open();
      return b.request("POST", "/api/auth/signin", { json: { email: user.email, password }, headers: { "x-forwarded-for": `10.9.9.9, ${address}` } });
    };
    const statuses = [];
    for (let i = 0; i < 6; i++) statuses.push((await signIn("203.0.113.20", "not the password")).status);
    expect(statuses).toEqual([401, 401, 401, 401, 401, 429]);
    const owner = await signIn("198.51.100.20", "correct horse battery");
    expect(owner.status).toBe(200);
    expect((await body<{ user: { id: string } }>(owner)).user.id).toBe(user.id);
  });

  test("an X-Forwarded-For a client writes itself is not believed: rotating it does not escape the sign-in limit", async () => {
    const user = await browser().signUp("Owner");
    // 127.0.0.1 is no trusted proxy here: the header is the client's own.
    const server = serveReplica(await env.replica({ trustedProxies: ["10.0.0.0/8"] }));
    const statuses = [];
    for (let i = 0; i < 6; i++) {
      const b = new TestBrowser(overHttp(server.url.href));
      await b.open();
      const json = { email: user.email, password: "not the password" };
      statuses.push((await b.request("POST", "/api/auth/signin", { json, headers: { "x-forwarded-for": `192.0.2.${i + 1}` } })).status);
    }
    expect(statuses).toEqual([401, 401, 401, 401, 401, 429]);
  });

  test("sign-out answers 204, removes the cookie and ends the session in Redis", async () => {
    const b = browser();
    await b.signUp();
    const { key } = await storedSession(b);
    const stolen = b.cookies.get("bazaar_session")!;
    const res = await b.post("/api/auth/signout");
    expect(res.status).toBe(204);
    expect(b.cookies.has("bazaar_session")).toBe(false);
    expect(await env.redis.client.exists(key)).toBe(0);
    expect((await b.open()).user).toBeNull();
    // The old cookie, replayed, is worth nothing.
    const replay = new TestBrowser(env.bff.app);
    replay.cookies.set("bazaar_session", stolen);
    expect((await replay.get("/api/cart")).status).toBe(401);
  });

  test("each use of a session slides its expiry in Redis", async () => {
    const b = browser();
    await b.signUp();
    const { key } = await storedSession(b);
    await env.redis.client.expire(key, 60);
    await b.get("/api/cart");
    expect(await env.redis.client.ttl(key)).toBeGreaterThan(7 * 24 * 3600 - 60);
  });
});

describe("who may do what", () => {
  test("signed out, the user's pages are 401", async () => {
    const b = browser();
    await b.open();
    for (const path of ["/api/cart", "/api/orders", "/api/notifications", "/api/events", "/api/orders/00000000-0000-4000-8000-000000000000"]) {
      const res = await b.get(path);
      expect(res.status, path).toBe(401);
      expect((await body<ApiErrorBody>(res)).error.code).toBe("unauthenticated");
    }
    expect((await b.post("/api/checkout", { idempotencyKey: "k".repeat(16), card: {} })).status).toBe(401);
    expect((await b.post("/api/cart/items", { productId: crypto.randomUUID(), quantity: 1 })).status).toBe(401);
  });

  test("admin pages are 401 signed out, 403 for a customer, and open to an admin", async () => {
    const anonymous = browser();
    await anonymous.open();
    expect((await anonymous.get("/api/admin/orders")).status).toBe(401);

    const customer = browser();
    await customer.signUp();
    const forbidden = await customer.get("/api/admin/orders");
    expect(forbidden.status).toBe(403);
    expect((await body<ApiErrorBody>(forbidden)).error.code).toBe("forbidden");
    expect((await customer.post(`/api/admin/stock/${crypto.randomUUID()}`, { delta: 1, reason: "test" })).status).toBe(403);

    const admin = browser();
    expect((await admin.signIn(demoAdmin.email, demoAdmin.password)).status).toBe(200);
    const res = await admin.get("/api/admin/orders");
    expect(res.status).toBe(200);
    expect(Array.isArray((await body<{ orders: unknown[] }>(res)).orders)).toBe(true);
  });
});

describe("CSRF double-submit", () => {
  test("an unsafe request without the header, or with a wrong one, is a 403 csrf and changes nothing", async () => {
    const b = browser();
    await b.signUp();
    const { products } = await body<{ products: { id: string }[] }>(await b.get("/api/products?pageSize=1"));
    const productId = products[0]!.id;

    const missing = await b.post("/api/cart/items", { productId, quantity: 1 }, { csrf: false });
    expect(missing.status).toBe(403);
    expect((await body<ApiErrorBody>(missing)).error.code).toBe("csrf");
    const wrong = await b.post("/api/cart/items", { productId, quantity: 1 }, { csrf: "x".repeat(43) });
    expect(wrong.status).toBe(403);
    expect((await body<{ cart: { itemCount: number } }>(await b.get("/api/cart"))).cart.itemCount).toBe(0);

    // Sign-out without the token does not sign out.
    expect((await b.post("/api/auth/signout", undefined, { csrf: false })).status).toBe(403);
    expect((await b.open()).user).not.toBeNull();

    expect((await b.post("/api/cart/items", { productId, quantity: 1 })).status).toBe(200);
  });

  test("sign-in without the CSRF cookie is refused before any session starts", async () => {
    const b = browser();
    const res = await b.post("/api/auth/signin", { email: demoAdmin.email, password: demoAdmin.password });
    expect(res.status).toBe(403);
    expect(b.cookies.has("bazaar_session")).toBe(false);
  });
});

describe("invalid requests", () => {
  test("a bad sign-up body is a 400 naming each field", async () => {
    const b = browser();
    await b.open();
    const res = await b.post("/api/auth/signup", { email: "not-an-email", password: "short", displayName: "" });
    expect(res.status).toBe(400);
    const { error } = await body<ApiErrorBody>(res);
    expect(error.code).toBe("invalid_request");
    expect(Object.keys(error.fields!).sort()).toEqual(["displayName", "email", "password"]);
    expect(error.fields!.password).toBe("must be at least 10 characters");
  });

  test("bad cart and checkout bodies are 400s naming each field; a body that is not JSON is a 400 too", async () => {
    const b = browser();
    await b.signUp();
    const cart = await body<ApiErrorBody>(await b.post("/api/cart/items", { productId: "nope", quantity: 0 }));
    expect(cart.error.fields).toEqual({ productId: "must be a product id", quantity: "must be at least 1" });

    const checkout = await b.post("/api/checkout", { idempotencyKey: "short", card: { number: "4242-4242", expiryMonth: 13, expiryYear: 30, cvc: "1" } });
    expect(checkout.status).toBe(400);
    expect(Object.keys((await body<ApiErrorBody>(checkout)).error.fields!).sort()).toEqual([
      "card.cvc",
      "card.expiryMonth",
      "card.expiryYear",
      "card.number",
      "expectedTotal",
      "idempotencyKey",
    ]);

    const notJson = await b.request("POST", "/api/cart/items", { body: "{not json", headers: { "content-type": "application/json" } });
    expect(notJson.status).toBe(400);
    expect((await body<ApiErrorBody>(notJson)).error.code).toBe("invalid_request");
  });

  test("a field a service rejects comes back as that field (camelCase), with the service's words", async () => {
    const b = browser();
    await b.signUp();
    // Passes the BFF's checks (digits, length) but not orders' Luhn check.
    const { products } = await body<{ products: { id: string }[] }>(await b.get("/api/products?pageSize=1"));
    await b.post("/api/cart/items", { productId: products[0]!.id, quantity: 1 });
    const res = await b.checkout({ number: "4242 4242 4242 4241", expiryMonth: 12, expiryYear: 2040, cvc: "123" });
    expect(res.status).toBe(400);
    const { error } = await body<ApiErrorBody>(res);
    expect(error.fields?.["card.number"]).toContain("check digit");
  });
});

describe("when a dependency is down", () => {
  test("identity not running: sign-in is a 503 with a message for people", async () => {
    const down = createIdentityClient(`127.0.0.1:${freePort()}`, 1_000);
    try {
      const b = new TestBrowser(createApp({ upstreams: { ...env.bff.upstreams, identity: down }, redis: env.redis }));
      await b.open();
      const res = await b.post("/api/auth/signin", { email: demoAdmin.email, password: demoAdmin.password });
      expect(res.status).toBe(503);
      const { error } = await body<ApiErrorBody>(res);
      expect(error.code).toBe("unavailable");
      expect(error.message).toContain("try again");
    } finally {
      down.close();
    }
  });

  test("cart not running: the cart is a 503, the product page still shows the product (cart size unknown)", async () => {
    const upstreams = env.upstreamsAt({ cart: `127.0.0.1:${freePort()}` });
    try {
      const b = browser();
      await b.signUp();
      b.app = createApp({ upstreams, redis: env.redis });
      expect((await b.get("/api/cart")).status).toBe(503);
      const { products } = await body<{ products: { id: string }[] }>(await b.get("/api/products?pageSize=1"));
      const page = await b.get(`/api/products/${products[0]!.id}`);
      expect(page.status).toBe(200);
      expect((await body<{ cartCount: number | null }>(page)).cartCount).toBeNull();
    } finally {
      for (const client of Object.values(upstreams)) client.close();
    }
  });

  test("Redis unreachable: signed-in pages and the signed-in shopper's /api/session are a 503 (not 'signed out'); the catalog and a browser without a session are answered", async () => {
    const redis = await connectRedis(testEnv.REDIS_URL, env.redis.keyPrefix);
    const b = browser();
    await b.signUp();
    b.app = createApp({ upstreams: env.bff.upstreams, redis });
    const newcomer = new TestBrowser(b.app);
    await redis.close();
    expect((await b.get("/api/cart")).status).toBe(503);
    expect((await b.get("/api/products?pageSize=1")).status).toBe(200);
    expect((await b.get("/api/session")).status).toBe(503);
    expect((await newcomer.get("/api/session")).status).toBe(200);
  });
});

describe("access token refresh", () => {
  test("a 30-second token is not refreshed on every request", async () => {
    const identity = countingRefreshes(env.bff.upstreams.identity);
    const b = new TestBrowser(createApp({ upstreams: { ...env.bff.upstreams, identity: identity.client }, redis: env.redis }));
    await b.signUp();
    for (let i = 0; i < 3; i++) expect((await b.get("/api/cart")).status).toBe(200);
    expect(identity.count()).toBe(0);
  });

  test("a session whose access token has expired keeps working: the BFF refreshes it first", async () => {
    const b = browser();
    await b.signUp();
    const before = (await storedSession(b)).record;
    // As if the token's time had run out: the stored token is unusable and marked expired.
    await alterSession(b, { accessToken: "expired.token.value", accessExpiresAt: Date.now() - 1_000 });
    const res = await b.get("/api/cart");
    expect(res.status).toBe(200);
    const after = (await storedSession(b)).record;
    expect(after.accessToken).not.toBe(before.accessToken);
    expect(after.refreshToken).not.toBe(before.refreshToken);
    expect(after.accessExpiresAt).toBeGreaterThan(Date.now() + 20_000);
    expect((await b.get("/api/orders")).status).toBe(200);
  });

  test("concurrent requests on two replicas refresh once, and the session survives", async () => {
    const a = countingRefreshes(env.bff.upstreams.identity);
    const c = countingRefreshes(env.bff.upstreams.identity);
    const replicaA = createApp({ upstreams: { ...env.bff.upstreams, identity: a.client }, redis: env.redis });
    const replicaB = createApp({ upstreams: { ...env.bff.upstreams, identity: c.client }, redis: env.redis });
    const b = new TestBrowser(replicaA);
    await b.signUp();
    await alterSession(b, { accessExpiresAt: Date.now() - 1_000 });
    const cookie = b.cookieHeader();
    const results = await Promise.all(Array.from({ length: 16 }, (_, i) => (i % 2 ? replicaA : replicaB).request("/api/cart", { headers: { cookie } })));
    expect(results.map((r) => r.status)).toEqual(Array(16).fill(200));
    expect(a.count() + c.count()).toBe(1);
    // Had the refresh token been used twice, identity would have revoked the family.
    await alterSession(b, { accessExpiresAt: Date.now() - 1_000 });
    expect((await b.get("/api/cart")).status).toBe(200);
    expect(a.count() + c.count()).toBe(2);
  });

  test("a refresh token identity refuses ends the session: 401, and the cookie is removed", async () => {
    const b = browser();
    await b.signUp();
    await alterSession(b, { accessExpiresAt: Date.now() - 1_000, refreshToken: "revoked-or-reused-token" });
    const res = await b.get("/api/cart");
    expect(res.status).toBe(401);
    expect(b.cookies.has("bazaar_session")).toBe(false);
    expect((await b.open()).user).toBeNull();
  });
});
