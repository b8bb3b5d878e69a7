/**
 * Carts and sessions survive a Redis restart where Redis persists them, and a Redis that lost
 * everything costs the shopper a sign-in, not an error page. The cart service runs as a real
 * process and the BFF as its app, against redis-servers of this test's own: one with
 * compose.yaml's persistence flags (AOF, fsync every second, a data directory of its own),
 * one keeping nothing, as this machine's Redis. The machine's shared servers are never
 * stopped or flushed (identity and catalog use those).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { connectRedis, type RedisConnection } from "@bazaar/platform/cache";
import { configureLogging } from "@bazaar/platform/log";
import { eventually } from "@bazaar/testkit/eventually";
import { type BearerAuth, bearer, registerAndLogin, testRedisPrefix } from "@bazaar/testkit/fixtures";
import { PrivateRedis } from "@bazaar/testkit/private-servers";
import { startTestPlatform, type TestPlatform } from "@bazaar/testkit/test-platform";
import { createApp, type Upstreams } from "../bff/src/app.ts";
import type { CartView } from "../bff/src/shape.ts";
import { platformUpstreams } from "../bff/test/support/bff-platform.ts";
import { type ApiErrorBody, body, TestBrowser } from "../bff/test/support/browser.ts";

let persistent: PrivateRedis;
let forgetful: PrivateRedis;
let platform: TestPlatform;
let upstreams: Upstreams;
const connections: RedisConnection[] = [];
let productIds: string[];

beforeAll(async () => {
  configureLogging("redis-persistence-test", "error");
  [persistent, forgetful] = await Promise.all([PrivateRedis.create({ persistent: true }), PrivateRedis.create()]);
  platform = await startTestPlatform({ cart: { REDIS_URL: persistent.url } }, { only: ["identity", "catalog", "cart"] });
  upstreams = platformUpstreams(platform);
  const { products } = await platform.clients.catalog.listProducts({ pageSize: 5 });
  productIds = products.map((p) => p.id);
}, 120_000);

afterAll(async () => {
  for (const c of connections) await c.close().catch(() => {});
  for (const client of Object.values(upstreams ?? {})) client.close();
  await platform?.cleanup();
  await Promise.all([persistent?.destroy(), forgetful?.destroy()]);
}, 60_000);

/** A BFF app whose sessions live in `redis` (under a prefix of its own). */
async function bffOn(redis: PrivateRedis): Promise<TestBrowser> {
  const connection = await connectRedis(redis.url, testRedisPrefix().prefix);
  connections.push(connection);
  return new TestBrowser(createApp({ upstreams, redis: connection }));
}

/** A buyer whose cart holds 2, 1 and 3 units of three products. */
async function buyerWithCart(): Promise<BearerAuth> {
  const buyer = bearer((await registerAndLogin(platform.clients.identity)).tokens.accessToken);
  for (const [i, quantity] of [2, 1, 3].entries()) await platform.clients.cart.addItem({ productId: productIds[i]!, quantity }, buyer);
  return buyer;
}

const cartLines = async (buyer: BearerAuth) =>
  (await platform.clients.cart.getCart({}, buyer)).cart?.lines.map((l) => ({ productId: l.productId, quantity: l.quantity })) ?? [];

/** Waits until the cart service answers GetCart again after Redis came back; answers how long that took. */
async function cartBack(buyer: BearerAuth, since: number): Promise<number> {
  await eventually(() => platform.clients.cart.getCart({}, { ...buyer, timeoutMs: 1_000 }).then(() => true), {
    what: "GetCart to work again",
    timeoutMs: 15_000,
  });
  return performance.now() - since;
}

/** Everything Redis's append-only log on disk holds (the base and the increments). */
function appendOnlyLog(redis: PrivateRedis): string {
  const dir = join(redis.dataDirectory!, "appendonlydir");
  return readdirSync(dir)
    .map((f) => readFileSync(join(dir, f), "latin1"))
    .join("");
}

describe("a Redis with compose's persistence (AOF, fsync every second)", () => {
  test("a cart's lines are all there after Redis is stopped cleanly (SIGTERM) and started again", async () => {
    const buyer = await buyerWithCart();
    const before = await cartLines(buyer);
    expect(before).toHaveLength(3);
    const stopped = performance.now();
    await persistent.stop("SIGTERM");
    await persistent.start();
    const tookMs = await cartBack(buyer, stopped);
    expect(await cartLines(buyer)).toEqual(before);
    console.log(
      `SIGTERM: ${before.length} lines (${before.reduce((n, l) => n + l.quantity, 0)} units) survived; GetCart answered ${tookMs.toFixed(0)} ms after the stop`,
    );
  }, 60_000);

  test("a cart's lines are all there after Redis crashes (SIGKILL) a second after the last change, once the log was fsynced", async () => {
    const buyer = await buyerWithCart();
    const before = await cartLines(buyer);
    const lastWrite = performance.now();
    // appendfsync everysec: Redis writes a change to the log before it replies (unless a slow
    // disk makes it postpone the write, up to 2 s) and fsyncs the log every second; a crash
    // once both happened loses nothing.
    await eventually(() => performance.now() - lastWrite > 1_100 && appendOnlyLog(persistent).includes(productIds[2]!), {
      what: "the last change to be in the log for over a second",
      timeoutMs: 5_000,
    });
    const killed = performance.now();
    await persistent.stop("SIGKILL");
    await persistent.start();
    const tookMs = await cartBack(buyer, killed);
    expect(await cartLines(buyer)).toEqual(before);
    console.log(`SIGKILL: ${before.length} lines survived; GetCart answered ${tookMs.toFixed(0)} ms after the crash`);
  }, 60_000);

  test("a signed-in shopper is still signed in, with the same cart, after Redis restarts", async () => {
    const b = await bffOn(persistent);
    const user = await b.signUp("Persistent Shopper");
    await b.post("/api/cart/items", { productId: productIds[0], quantity: 2 });
    const stopped = performance.now();
    await persistent.stop("SIGTERM");
    await persistent.start();
    // /api/session answers 503 while it cannot read the session (Redis not reconnected yet):
    // wait until it reads the session again, then it must be the same user's.
    const session = await eventually(
      async () => {
        const res = await b.get("/api/session");
        return res.status === 200 ? ((await body<{ user: { id: string } | null }>(res)).user ?? undefined) : undefined;
      },
      { what: "the BFF to read the session again", timeoutMs: 15_000 },
    );
    expect(session.id).toBe(user.id);
    // The cart service reconnects on its own schedule: a 503 until it has.
    const res = await eventually(
      async () => {
        const r = await b.get("/api/cart");
        return r.status === 503 ? undefined : r;
      },
      { what: "the cart service to read carts again", timeoutMs: 15_000 },
    );
    expect(res.status).toBe(200);
    expect((await body<{ cart: CartView }>(res)).cart.itemCount).toBe(2);
    console.log(`session and cart back ${(performance.now() - stopped).toFixed(0)} ms after Redis was stopped`);
  }, 60_000);
});

describe("a Redis that lost everything (no persistence)", () => {
  for (const loss of ["restarted empty", "flushed"] as const) {
    test(`with Redis ${loss}, a signed-in shopper's next request is a 401 asking to sign in (not a 500), the session cookie is dropped, and signing in again works`, async () => {
      const b = await bffOn(forgetful);
      const email = (await b.signUp("Forgetful Shopper")).email;
      expect((await b.get("/api/cart")).status).toBe(200);
      if (loss === "flushed") {
        const admin = await connectRedis(forgetful.url, "");
        await admin.client.flushAll();
        await admin.close();
      } else {
        const newcomer = await bffOn(forgetful);
        await forgetful.stop("SIGKILL");
        // While it is down the BFF cannot tell: a 503 to try again, never a 500, nor "signed
        // out" (/api/session) to a browser that has a session; one without is answered as ever.
        const down = await b.get("/api/cart");
        expect(down.status).toBe(503);
        expect((await b.get("/api/session")).status).toBe(503);
        const anonymous = await newcomer.get("/api/session");
        expect({ status: anonymous.status, user: (await body<{ user: unknown }>(anonymous)).user }).toEqual({ status: 200, user: null });
        await forgetful.start();
      }
      const res = await eventually(
        async () => {
          const r = await b.get("/api/cart");
          return r.status === 503 ? undefined : r;
        },
        { what: "the BFF to reach Redis again", timeoutMs: 15_000 },
      );
      expect(res.status).toBe(401);
      expect((await body<ApiErrorBody>(res)).error.code).toBe("unauthenticated");
      expect(b.cookies.has("bazaar_session")).toBe(false);
      expect((await b.open()).user).toBeNull();
      expect((await b.signIn(email, "correct horse battery")).status).toBe(200);
      expect((await b.get("/api/cart")).status).toBe(200);
    }, 60_000);
  }
});
