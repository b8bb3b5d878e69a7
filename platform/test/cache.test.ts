/**
 * CacheAside, and the Redis connection under it, against a redis-server of this test's own,
 * which the test pauses (SIGSTOP: commands are sent and never answered) and resumes. Each test
 * has a cache of its own name, so its metrics are its own.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { CacheAside, type CacheAsideOptions, connectRedis, type RedisConnection } from "@bazaar/platform/cache";
import { CallEndedError, withCallBudget } from "@bazaar/platform/call-budget";
import { configureLogging } from "@bazaar/platform/log";
import { registry } from "@bazaar/platform/metrics";
import { eventually } from "@bazaar/testkit/eventually";
import { PrivateRedis } from "@bazaar/testkit/private-servers";
import { TestScope } from "@bazaar/testkit/test-scope";

const scope = new TestScope();
let redis: PrivateRedis;
let connection: RedisConnection;

beforeAll(async () => {
  configureLogging("cache-test", "error");
  redis = scope.add(await PrivateRedis.create(), (r) => r.destroy());
  connection = scope.add(await connectRedis(redis.url, "cache-test:"), (c) => c.close());
}, 30_000);

afterEach(() => redis.resume());
afterAll(() => scope.cleanup(), 30_000);

let caches = 0;
function newCache(options: Partial<CacheAsideOptions<string>> = {}): { cache: CacheAside<string>; name: string } {
  const name = `test${++caches}`;
  const cache = new CacheAside<string>(connection, { name, ttlSeconds: 60, codec: { encode: (s) => s, decode: (s) => s }, commandTimeoutMs: 50, ...options });
  return { cache, name };
}

/** The value of a series in this process's registry, 0 when it has none yet. */
async function metric(name: string, labels: Record<string, string>): Promise<number> {
  const values = (await registry.getSingleMetric(name)?.get())?.values ?? [];
  const found = values.find((v) => Object.entries(labels).every(([k, want]) => v.labels[k] === want));
  return found?.value ?? 0;
}

const fromSource = (tag: string) => async (id: string) => `${tag} ${id}`;

async function timed<T>(fn: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const started = performance.now();
  const value = await fn();
  return { value, ms: performance.now() - started };
}

describe("CacheAside with Redis hung", () => {
  test("a read Redis does not answer within the command budget is served from the source, and a lost invalidation is counted instead of thrown", async () => {
    const { cache, name } = newCache();
    expect(await cache.get("a", fromSource("cached"))).toBe("cached a");
    expect(await cache.get("a", fromSource("fresh"))).toBe("cached a");
    redis.pause();
    const read = await timed(() => cache.get("a", fromSource("fresh")));
    expect(read.value).toBe("fresh a");
    expect(read.ms).toBeLessThan(300);
    const invalidation = await timed(() => cache.invalidate(["a"]));
    expect(invalidation.ms).toBeLessThan(300);
    expect(await metric("bazaar_cache_command_failures_total", { cache: name, operation: "read", reason: "timeout" })).toBe(1);
    expect(await metric("bazaar_cache_command_failures_total", { cache: name, operation: "invalidate", reason: "timeout" })).toBe(1);
    expect(await metric("bazaar_cache_requests_total", { cache: name, result: "miss" })).toBe(2);
    expect(await metric("bazaar_cache_circuit_open", { cache: name })).toBe(0);
  });

  test("five failures in a row open the circuit: the cache is bypassed without waiting on Redis until, once Redis answers again, a probe closes it", async () => {
    const { cache, name } = newCache({ breaker: { coolDownMs: 300 } });
    await cache.get("b", fromSource("cached"));
    redis.pause();
    for (let i = 0; i < 5; i++) expect(await cache.get("b", fromSource("fresh"))).toBe("fresh b");
    expect(await metric("bazaar_cache_circuit_open", { cache: name })).toBe(1);
    // Twenty reads that each waited out the 50 ms budget would take a second.
    const bypassed = await timed(async () => {
      for (let i = 0; i < 20; i++) expect(await cache.get("b", fromSource("fresh"))).toBe("fresh b");
    });
    expect(bypassed.ms).toBeLessThan(200);
    expect(await metric("bazaar_cache_requests_total", { cache: name, result: "bypassed" })).toBe(20);
    await cache.invalidate(["other"]);
    expect(await metric("bazaar_cache_command_failures_total", { cache: name, operation: "invalidate", reason: "bypassed" })).toBe(1);

    redis.resume();
    const resumed = performance.now();
    const closed = async () => {
      await cache.get("b", fromSource("fresh"));
      return (await metric("bazaar_cache_circuit_open", { cache: name })) === 0;
    };
    await eventually(closed, { what: "the circuit to close", timeoutMs: 5_000 });
    expect(performance.now() - resumed).toBeLessThan(2_000);
    const hits = await metric("bazaar_cache_requests_total", { cache: name, result: "hit" });
    expect(await cache.get("b", fromSource("fresh"))).toBe("cached b");
    expect(await metric("bazaar_cache_requests_total", { cache: name, result: "hit" })).toBe(hits + 1);
  });
});

/** Runs `fn` as a gRPC handler would, inside a call whose budget ends in `ms` (or when `cancel` aborts). */
function inCall<T>(ms: number, fn: () => Promise<T>, cancel?: AbortSignal): Promise<T> {
  const signal = cancel ? AbortSignal.any([cancel, AbortSignal.timeout(ms)]) : AbortSignal.timeout(ms);
  return withCallBudget({ deadline: new Date(Date.now() + ms), signal, inFlight: true }, fn);
}

/** How `work` ended and when, or "pending" if it had not within `ms` (a bounded look). */
async function outcomeWithin<T>(work: Promise<T>, ms: number): Promise<{ outcome: "pending" | { value: T } | { error: unknown }; ms: number }> {
  const started = performance.now();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const outcome = await Promise.race([
    work.then(
      (value) => ({ value }),
      (error: unknown) => ({ error }),
    ),
    new Promise<"pending">((resolve) => (timer = setTimeout(() => resolve("pending"), ms))),
  ]);
  clearTimeout(timer);
  return { outcome, ms: performance.now() - started };
}

/** The CallEndedError `outcome` failed with; fails the test if it is anything else. */
function abandonment(outcome: Awaited<ReturnType<typeof outcomeWithin>>["outcome"]): CallEndedError {
  const error = typeof outcome === "object" && "error" in outcome ? outcome.error : outcome;
  if (!(error instanceof CallEndedError)) throw new Error(`expected the command to be abandoned with the call, got ${Bun.inspect(outcome)}`);
  return error;
}

describe("Redis commands made for a call end with the call", () => {
  test("a command and a transaction a hung Redis does not answer are abandoned when the call's deadline passes, and the connection answers rightly once Redis is back", async () => {
    await connection.client.set("cache-test:budget", "before");
    redis.pause();
    const get = outcomeWithin(
      inCall(300, () => connection.client.get("cache-test:budget")),
      3_000,
    );
    const multi = outcomeWithin(
      inCall(300, () => connection.client.multi().get("cache-test:budget").exec()),
      3_000,
    );
    for (const { outcome, ms } of [await get, await multi]) {
      const error = abandonment(outcome);
      expect(error.deadlineExceeded).toBe(true);
      expect(ms).toBeGreaterThan(250);
      expect(ms).toBeLessThan(600);
    }
    redis.resume();
    // The abandoned commands' late replies are read and dropped: the next reply is the next command's.
    await connection.client.set("cache-test:budget", "after");
    expect(await connection.client.get("cache-test:budget")).toBe("after");
  });

  test("a command of a call its caller cancels is abandoned at once, as cancelled", async () => {
    redis.pause();
    const cancel = new AbortController();
    const get = outcomeWithin(
      inCall(5_000, () => connection.client.get("cache-test:budget"), cancel.signal),
      3_000,
    );
    setTimeout(() => cancel.abort(), 100);
    const { outcome, ms } = await get;
    expect(abandonment(outcome).deadlineExceeded).toBe(false);
    expect(ms).toBeLessThan(500);
  });

  test("a command made outside any call waits for a hung Redis as before and gets its answer when Redis resumes", async () => {
    await connection.client.set("cache-test:background", "kept");
    redis.pause();
    const get = connection.client.get("cache-test:background");
    // Well past the 300 ms a call's command was given above, it is still waiting…
    expect((await outcomeWithin(get, 800)).outcome).toBe("pending");
    redis.resume();
    // …and Redis's answer reaches it.
    expect((await outcomeWithin(get, 3_000)).outcome).toEqual({ value: "kept" });
  });
});
