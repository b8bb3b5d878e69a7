/**
 * Health tells the truth, and outages come back as UNAVAILABLE: catalog and cart run as real
 * processes against a Postgres and a Redis of this test's own, which the test stops and
 * starts. The machine's shared servers are never touched (identity uses those).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { status } from "@grpc/grpc-js";
import { createClient as createRedisClient } from "redis";
import { createClient, type GrpcClient } from "@bazaar/platform/grpc/client";
import { configureLogging } from "@bazaar/platform/log";
import { eventually } from "@bazaar/testkit/eventually";
import { type BearerAuth, bearer, registerAndLogin, rpcError } from "@bazaar/testkit/fixtures";
import { PrivatePostgres, PrivateRedis } from "@bazaar/testkit/private-servers";
import { startTestPlatform, type TestPlatform } from "@bazaar/testkit/test-platform";
import { Health, HealthCheckResponse_ServingStatus as ServingStatus } from "@bazaar/proto/grpc/health/v1/health_pb";

let postgres: PrivatePostgres;
let redis: PrivateRedis;
let platform: TestPlatform;
let buyer: BearerAuth;
const health: Record<string, GrpcClient<typeof Health>> = {};

beforeAll(async () => {
  configureLogging("outage-test", "error");
  [postgres, redis] = await Promise.all([PrivatePostgres.create(), PrivateRedis.create()]);
  platform = await startTestPlatform(
    {
      catalog: { DATABASE_URL: postgres.url("bazaar_catalog"), REDIS_URL: redis.url },
      cart: { REDIS_URL: redis.url },
    },
    { only: ["identity", "catalog", "cart"] },
  );
  for (const name of ["catalog", "cart"] as const) health[name] = createClient(Health, platform.address(name), { defaultTimeoutMs: 2_000 });
  buyer = bearer((await registerAndLogin(platform.clients.identity)).tokens.accessToken);
}, 120_000);

afterAll(async () => {
  for (const c of Object.values(health)) c.close();
  await platform?.cleanup();
  await Promise.all([postgres?.destroy(), redis?.destroy()]);
}, 60_000);

const grpcHealth = async (name: "catalog" | "cart") => (await health[name]!.check({ service: "" })).status;
const readyz = async (name: "catalog" | "cart") => {
  const res = await fetch(`${platform.httpUrl(name)}/readyz`, { signal: AbortSignal.timeout(2_000) });
  return { status: res.status, body: (await res.json()) as { status: string; dependencies: Record<string, { up: boolean; required: boolean }> } };
};
const livez = async (name: "catalog" | "cart") => (await fetch(`${platform.httpUrl(name)}/livez`, { signal: AbortSignal.timeout(2_000) })).status;

describe("Postgres down", () => {
  test("catalog reports NOT_SERVING (gRPC health and /readyz) while alive, answers UNAVAILABLE naming Postgres, and serves again by itself", async () => {
    expect(await grpcHealth("catalog")).toBe(ServingStatus.SERVING);
    await platform.clients.catalog.listProducts({ pageSize: 5 });
    await postgres.stop("immediate");
    try {
      await eventually(async () => (await grpcHealth("catalog")) === ServingStatus.NOT_SERVING, { what: "catalog to report NOT_SERVING", timeoutMs: 5_000 });
      const ready = await readyz("catalog");
      expect(ready.status).toBe(503);
      expect(ready.body.dependencies.postgres).toMatchObject({ up: false, required: true });
      expect(await livez("catalog")).toBe(200);
      const started = performance.now();
      const err = await rpcError(platform.clients.catalog.listProducts({ pageSize: 5 }));
      const tookMs = performance.now() - started;
      expect(err.code).toBe(status.UNAVAILABLE);
      expect(err.message).toContain("Postgres");
      console.log(`ListProducts with Postgres down: ${err.codeName} in ${tookMs.toFixed(0)} ms`);
    } finally {
      await postgres.start();
    }
    const back = performance.now();
    await eventually(async () => (await grpcHealth("catalog")) === ServingStatus.SERVING, { what: "catalog to serve again", timeoutMs: 10_000 });
    await eventually(() => platform.clients.catalog.listProducts({ pageSize: 5 }).then(() => true), { what: "ListProducts to work again", timeoutMs: 10_000 });
    console.log(`catalog serving ${(performance.now() - back).toFixed(0)} ms after Postgres was back`);
    expect((await readyz("catalog")).status).toBe(200);
  }, 60_000);
});

describe("Redis down", () => {
  test("cart, which keeps carts in Redis, reports NOT_SERVING and answers UNAVAILABLE naming Redis; catalog, which only caches there, keeps serving; both recover by themselves", async () => {
    await platform.clients.cart.getCart({}, buyer);
    await redis.stop();
    try {
      await eventually(async () => (await grpcHealth("cart")) === ServingStatus.NOT_SERVING, { what: "cart to report NOT_SERVING", timeoutMs: 5_000 });
      const err = await rpcError(platform.clients.cart.getCart({}, buyer));
      expect(err.code).toBe(status.UNAVAILABLE);
      expect(err.message).toContain("Redis");
      expect(await livez("cart")).toBe(200);
      // Catalog notices Redis is gone but carries on: it is a cache.
      await eventually(async () => (await readyz("catalog")).body.dependencies.redis?.up === false, {
        what: "catalog to notice Redis is down",
        timeoutMs: 5_000,
      });
      expect(await grpcHealth("catalog")).toBe(ServingStatus.SERVING);
      await platform.clients.catalog.listProducts({ pageSize: 5 });
    } finally {
      await redis.start();
    }
    const back = performance.now();
    await eventually(async () => (await grpcHealth("cart")) === ServingStatus.SERVING, { what: "cart to serve again", timeoutMs: 10_000 });
    await eventually(() => platform.clients.cart.getCart({}, buyer).then(() => true), { what: "GetCart to work again", timeoutMs: 10_000 });
    console.log(`cart serving ${(performance.now() - back).toFixed(0)} ms after Redis was back`);
  }, 60_000);
});

describe("Redis refusing work", () => {
  test("a Redis out of memory (noeviction refuses writes) answers AddItem UNAVAILABLE naming Redis, not INTERNAL, and takes writes again once it has room", async () => {
    const { products } = await platform.clients.catalog.listProducts({ pageSize: 1 });
    const admin = createRedisClient({ url: redis.url });
    await admin.connect();
    try {
      // One byte of memory: every write is refused with "OOM command not allowed …", as a full Redis under noeviction.
      await admin.configSet("maxmemory", "1");
      const err = await rpcError(platform.clients.cart.addItem({ productId: products[0]!.id, quantity: 1 }, buyer));
      expect({ code: err.codeName, namesRedis: err.message.includes("Redis") }).toEqual({ code: "UNAVAILABLE", namesRedis: true });
    } finally {
      await admin.configSet("maxmemory", "0");
      await admin.close();
    }
    await platform.clients.cart.addItem({ productId: products[0]!.id, quantity: 1 }, buyer);
  }, 30_000);
});

/** cart's count of GetCart calls it has finished serving with `code` (grpc_server_handled_total). */
async function getCartsHandled(code: string): Promise<number> {
  const text = await (await fetch(`${platform.httpUrl("cart")}/metrics`, { signal: AbortSignal.timeout(2_000) })).text();
  const line = text
    .split("\n")
    .find((l) => l.startsWith("grpc_server_handled_total{") && l.includes('grpc_method="GetCart"') && l.includes(`grpc_code="${code}"`));
  return line ? Number(line.split(" ").at(-1)) : 0;
}

describe("Redis hung: cart's commands end with the call", () => {
  test("with Redis paused, a GetCart with a 300 ms deadline fails DEADLINE_EXCEEDED within the budget and cart's handler stops waiting at the deadline; GetCart works again once Redis resumes", async () => {
    await eventually(() => platform.clients.cart.getCart({}, buyer).then(() => true), { what: "GetCart to work", timeoutMs: 10_000 });
    const handledBefore = await getCartsHandled("DEADLINE_EXCEEDED");
    redis.pause();
    try {
      const started = performance.now();
      const err = await rpcError(platform.clients.cart.getCart({}, { ...buyer, timeoutMs: 300 }));
      const tookMs = performance.now() - started;
      expect(err.code).toBe(status.DEADLINE_EXCEEDED);
      expect(tookMs).toBeLessThan(500);
      // The handler itself has finished, as DEADLINE_EXCEEDED, while Redis is still paused: it
      // did not stay waiting for an answer nobody would read (that would be counted only after
      // the resume).
      await eventually(async () => (await getCartsHandled("DEADLINE_EXCEEDED")) > handledBefore, {
        what: "cart to finish serving the GetCart",
        timeoutMs: 1_000,
      });
      const finishedMs = performance.now() - started;
      console.log(
        `GetCart (300 ms deadline) with Redis paused: ${err.codeName} in ${tookMs.toFixed(0)} ms; cart's handler finished within ${finishedMs.toFixed(0)} ms`,
      );
    } finally {
      redis.resume();
    }
    await eventually(() => platform.clients.cart.getCart({}, buyer).then(() => true), { what: "GetCart to work again", timeoutMs: 10_000 });
  }, 30_000);
});

/** A series of catalog's /metrics for the product cache, e.g. bazaar_cache_circuit_open or a result of bazaar_cache_requests_total. */
async function productCacheMetric(name: "bazaar_cache_circuit_open" | "bazaar_cache_requests_total", result?: string): Promise<number | undefined> {
  const text = await (await fetch(`${platform.httpUrl("catalog")}/metrics`, { signal: AbortSignal.timeout(2_000) })).text();
  for (const line of text.split("\n")) {
    const m = /^(\w+)\{([^}]*)\} (\S+)$/.exec(line);
    if (!m || m[1] !== name || !m[2]!.includes('cache="product"')) continue;
    if (result && !m[2]!.includes(`result="${result}"`)) continue;
    return Number(m[3]);
  }
  return undefined;
}

/**
 * Times GetProduct `calls` times in a row while Redis is out; each call is cut off at 3 s so a
 * cache that waits on Redis fails the bound rather than the test's timeout.
 */
async function timeGetProduct(id: string, calls: number): Promise<{ maxMs: number; lastMs: number; errors: string[] }> {
  const times: number[] = [];
  const errors: string[] = [];
  for (let i = 0; i < calls; i++) {
    const started = performance.now();
    try {
      const { product } = await platform.clients.catalog.getProduct({ id }, { timeoutMs: 3_000 });
      if (product?.id !== id) errors.push(`call ${i}: got ${product?.id}`);
    } catch (err) {
      errors.push(`call ${i}: ${(err as Error).message}`);
    }
    times.push(performance.now() - started);
  }
  return { maxMs: Math.max(...times), lastMs: times.at(-1)!, errors };
}

describe("Redis hung or down: catalog's cache steps aside", () => {
  let productId: string;
  beforeAll(async () => {
    await eventually(async () => (await grpcHealth("catalog")) === ServingStatus.SERVING, { what: "catalog to serve", timeoutMs: 10_000 });
    const { products } = await platform.clients.catalog.listProducts({ pageSize: 1 });
    productId = products[0]!.id;
  });

  /** Checks that reads hit the cache (and the circuit is closed) before the fault and after the recovery. */
  const servedFromCache = async () => {
    const hits = (await productCacheMetric("bazaar_cache_requests_total", "hit")) ?? 0;
    await platform.clients.catalog.getProduct({ id: productId }, { timeoutMs: 2_000 });
    return (await productCacheMetric("bazaar_cache_requests_total", "hit"))! > hits && (await productCacheMetric("bazaar_cache_circuit_open")) === 0;
  };

  for (const fault of ["paused", "stopped"] as const) {
    test(`with Redis ${fault}, GetProduct is answered from Postgres well within a second, the cache's circuit opens and catalog stays SERVING; the circuit closes by itself once Redis is back and reads hit the cache again`, async () => {
      await eventually(servedFromCache, { what: "GetProduct to be a cache hit", timeoutMs: 10_000 });
      if (fault === "paused") redis.pause();
      else await redis.stop();
      let timing: Awaited<ReturnType<typeof timeGetProduct>>;
      try {
        timing = await timeGetProduct(productId, 8);
        console.log(`GetProduct with Redis ${fault}: slowest of 8 ${timing.maxMs.toFixed(0)} ms, last ${timing.lastMs.toFixed(0)} ms`);
        expect(timing.errors).toEqual([]);
        expect(timing.maxMs).toBeLessThan(500);
        expect(await productCacheMetric("bazaar_cache_circuit_open")).toBe(1);
        expect((await productCacheMetric("bazaar_cache_requests_total", "bypassed"))!).toBeGreaterThan(0);
        expect(await grpcHealth("catalog")).toBe(ServingStatus.SERVING);
      } finally {
        if (fault === "paused") redis.resume();
        else await redis.start();
      }
      const back = performance.now();
      await eventually(servedFromCache, { what: "the circuit to close and GetProduct to hit the cache again", timeoutMs: 10_000 });
      console.log(
        `product cache closed and hitting ${(performance.now() - back).toFixed(0)} ms after Redis was ${fault === "paused" ? "resumed" : "restarted"}`,
      );
    }, 30_000);
  }
});
