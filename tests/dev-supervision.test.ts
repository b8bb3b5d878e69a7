/**
 * The dev runner supervises what it starts, against a real isolated platform: a process killed
 * while the platform serves is restarted and awaited healthy while every other process runs
 * on; a process that crashes on every start (its port taken by another program, a real cause)
 * is given up on after the crash-loop limit and the runner stops everything with exit code 3;
 * Ctrl-C while a crashed process waits out its backoff restarts nothing; and a process that
 * fails its first start (a setup problem) stops the runner at once, as before supervision.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import postgres from "postgres";
import type { TCPSocketListener } from "bun";
import { withDatabase } from "@bazaar/platform/database-url";
import { createClient } from "@bazaar/platform/grpc/client";
import { IdentityService } from "@bazaar/proto/bazaar/identity/v1/identity_pb";
import { PaymentsService } from "@bazaar/proto/bazaar/payments/v1/payments_pb";
import { eventually } from "@bazaar/testkit/eventually";
import { bearer, getJson, testEnv } from "@bazaar/testkit/fixtures";
import { TestScope } from "@bazaar/testkit/test-scope";
import { body, cards, demoAdmin, overHttp, TestBrowser } from "../bff/test/support/browser.ts";
import { type DevInstance, pidsOfInstance, processesOfInstance, startDevInstance } from "../scripts/dev-instance.ts";

interface ApiOrder {
  id: string;
  status: "PENDING" | "CONFIRMED" | "CANCELLED";
  cancelReason: string | null;
}

/** The runner's output from `from` (a length of an earlier output) on. */
const outputSince = (platform: DevInstance, from: number) => platform.output().slice(from);

/** Waits until the runner has printed a line matching `pattern` after `from`; returns the time it was seen. */
async function runnerSays(platform: DevInstance, pattern: RegExp, from: number, timeoutMs: number): Promise<number> {
  await eventually(() => pattern.test(outputSince(platform, from)), { what: `the runner to print ${pattern}`, timeoutMs });
  return performance.now();
}

/**
 * Kills `name` and, the moment its gRPC port is free, listens on it, as another program taking
 * the port would: every restart of the process then fails to bind and exits.
 */
async function killAndTakePort(platform: DevInstance, name: string): Promise<TCPSocketListener> {
  const port = platform.ports[name]!.grpc!;
  const pid = pidsOfInstance(platform.instance);
  if (typeof pid === "string") throw new Error(`no process runs ${pid}`);
  process.kill(pid[name]!, "SIGKILL");
  // The first restart comes 0.4–0.6 s after the exit; the port is free within milliseconds of it.
  return eventually(() => Bun.listen({ hostname: "127.0.0.1", port, socket: { data() {} } }), {
    what: `port ${port} of ${name} to be free`,
    timeoutMs: 300,
    intervalMs: 5,
  });
}

/** `count` products the storefront shows in stock. */
async function stockedProducts(bffUrl: string, count: number): Promise<string[]> {
  const { products } = await getJson<{ products: { id: string }[] }>(`${bffUrl}/api/products?pageSize=100`);
  const stocked: string[] = [];
  for (const { id } of products) {
    const { stock } = await getJson<{ stock: { available: number } }>(`${bffUrl}/api/products/${id}`);
    if (stock.available > 0) stocked.push(id);
    if (stocked.length === count) return stocked;
  }
  throw new Error(`fewer than ${count} products are in stock`);
}

describe("bun run dev when a process crashes", () => {
  const scope = new TestScope();
  let platform: DevInstance;

  beforeAll(async () => {
    platform = await startDevInstance({ instancePrefix: "crash", onSpawn: (handle) => scope.add(handle, (h) => h.cleanup(), "the dev instance") });
  }, 120_000);

  afterAll(() => scope.cleanup(), 60_000);

  test("orders SIGKILLed mid-checkout is restarted and healthy again, the others keep their PIDs, the pending order is confirmed once, and a new checkout works", async () => {
    const { bffUrl, ports, instance } = platform;
    const shopper = new TestBrowser(overHttp(bffUrl));
    await shopper.signUp("Crash Shopper");
    const [first, second] = await stockedProducts(bffUrl, 2);

    // The payment processor takes 6 s per charge (its fault settings, as an admin sets them), so
    // the checkout answers while its saga waits on the charge: the order is PENDING when orders dies.
    const identity = createClient(IdentityService, `127.0.0.1:${ports.identity!.grpc}`);
    const payments = createClient(PaymentsService, `127.0.0.1:${ports.payments!.grpc}`);
    const admin = bearer((await identity.login(demoAdmin)).tokens!.accessToken);
    const sql = postgres(withDatabase(testEnv.POSTGRES_URL, platform.databases.find((d) => d.startsWith("bazaar_payments_"))!), { max: 1, onnotice: () => {} });
    try {
      await payments.setFaultSettings({ settings: { failureRate: 0, addedLatencyMs: 6_000 } }, admin);
      expect((await shopper.post("/api/cart/items", { productId: first, quantity: 1 })).status).toBe(200);
      const placed = await shopper.checkout(cards.good);
      expect(placed.status, await placed.clone().text()).toBe(201);
      const { order: pending } = await body<{ order: ApiOrder }>(placed);
      expect(pending.status).toBe("PENDING");

      const before = platform.pids;
      const from = platform.output().length;
      const killedAt = performance.now();
      process.kill(before.orders!, "SIGKILL");
      await payments.setFaultSettings({ settings: { failureRate: 0, addedLatencyMs: 0 } }, admin);
      // The rest serve on while orders is down: the storefront still lists products.
      expect((await getJson<{ products: unknown[] }>(`${bffUrl}/api/products?pageSize=5`)).products.length).toBe(5);

      const healthyAt = await runnerSays(platform, /orders is healthy again \(restart 1\)/, from, 60_000);
      const said = outputSince(platform, from);
      expect(said).toMatch(/orders exited unexpectedly \(signal SIGKILL\) after [\d.]+ s up; restart 1 in 0\.[4-6] s/);
      expect(said).toMatch(/restarting orders \(restart 1, pid \d+\)/);
      expect(said).not.toContain("stopping every process");
      console.log(
        `SIGKILL of orders → healthy again: ${Math.round(healthyAt - killedAt)} ms (the runner's own count: ${/healthy again \(restart 1\), ([\d.]+ s)/.exec(said)?.[1]})`,
      );

      // Only orders was restarted: every other process is the one that started with the platform.
      const after = pidsOfInstance(instance);
      if (typeof after === "string") throw new Error(`no process runs ${after}`);
      expect(after.orders).not.toBe(before.orders);
      expect({ ...after, orders: 0 }).toEqual({ ...before, orders: 0 });

      // The order that was PENDING at the kill ends CONFIRMED, charged exactly once.
      const final = await eventually(
        async () => {
          const { order } = await body<{ order: ApiOrder }>(await shopper.get(`/api/orders/${pending.id}`));
          return order.status === "PENDING" ? undefined : order;
        },
        { what: `order ${pending.id} to be final after the restart`, timeoutMs: 30_000 },
      );
      expect(final.status).toBe("CONFIRMED");
      expect(final.cancelReason).toBeNull();
      const charges = await sql<{ status: string }[]>`select status from payments where order_id = ${pending.id}`;
      expect(charges.map((c) => c.status)).toEqual(["CAPTURED"]);

      // And the restarted orders takes new checkouts.
      expect((await shopper.post("/api/cart/items", { productId: second, quantity: 1 })).status).toBe(200);
      const next = await shopper.checkout(cards.good);
      expect(next.status, await next.clone().text()).toBe(201);
      const { order: placedAfter } = await body<{ order: ApiOrder }>(next);
      const confirmed = await eventually(
        async () => {
          const { order } = await body<{ order: ApiOrder }>(await shopper.get(`/api/orders/${placedAfter.id}`));
          return order.status === "PENDING" ? undefined : order;
        },
        { what: "the checkout after the restart to be final" },
      );
      expect(confirmed.status).toBe("CONFIRMED");
    } finally {
      identity.close();
      payments.close();
      await sql.end({ timeout: 5 });
    }
  }, 120_000);

  // Runs last: the runner stops the platform when it gives up.
  test("payments crashing on every restart (its port taken) is given up on after 5 crashes; the storefront serves meanwhile; then every process stops and the runner exits 3", async () => {
    const { bffUrl, instance } = platform;
    const from = platform.output().length;
    scope.add(await killAndTakePort(platform, "payments"), (listener) => listener.stop(true), "the listener on payments' port");

    await runnerSays(platform, /payments exited unexpectedly \(code 1\) after [\d.]+ s up; restart 2 in/, from, 30_000);
    // The others serve on while payments crash-loops: the catalog answers through the BFF.
    const page = await getJson<{ products: unknown[] }>(`${bffUrl}/api/products?pageSize=5`);
    expect(page.products.length).toBe(5);

    const code = await Promise.race([platform.runner.proc.exited, Bun.sleep(90_000).then(() => "still running after 90 s")]);
    expect(code).toBe(3);
    const said = outputSince(platform, from);
    expect(said).toMatch(/payments exited unexpectedly \(signal SIGKILL\) after [\d.]+ s up; restart 1 in/);
    for (const attempt of [1, 2, 3, 4]) expect(said).toMatch(new RegExp(`restarting payments \\(restart ${attempt}, pid \\d+\\)`));
    expect(said).not.toMatch(/restart 5 in/);
    expect(said).toMatch(
      /payments crashed 5 times within 120 s \(the last: code 1\); giving up on it, it is not restarted again\. Its last lines, which should say why:/,
    );
    // Those lines, repeated under it, name the cause.
    const port = platform.ports.payments!.grpc;
    expect(said.slice(said.indexOf("giving up on it"))).toMatch(
      new RegExp(`^dev\\s+│ {5}\\S+ error gRPC cannot listen on 127\\.0\\.0\\.1:${port}: the port is in use by another process`, "m"),
    );
    expect(said).toMatch(/stopped \(exit codes: .*payments=not running/);
    await eventually(() => processesOfInstance(instance).length === 0, { what: "every process of the instance to be gone", timeoutMs: 5_000 });
  }, 120_000);
});

describe("bun run dev stopped while a crashed process waits to restart", () => {
  const scope = new TestScope();
  let platform: DevInstance;

  beforeAll(async () => {
    platform = await startDevInstance({ instancePrefix: "backoff", onSpawn: (handle) => scope.add(handle, (h) => h.cleanup(), "the dev instance") });
  }, 120_000);

  afterAll(() => scope.cleanup(), 60_000);

  test("Ctrl-C during the backoff wait restarts nothing, stops every process promptly and exits 0", async () => {
    const { instance } = platform;
    const from = platform.output().length;
    scope.add(await killAndTakePort(platform, "cart"), (listener) => listener.stop(true), "the listener on cart's port");
    // The fourth wait is 3.2–4.8 s: Ctrl-C lands inside it.
    await runnerSays(platform, /cart exited unexpectedly \(code 1\) after [\d.]+ s up; restart 4 in [3-4]\.\d s/, from, 60_000);

    const stoppedFrom = platform.output().length;
    const started = performance.now();
    const code = await platform.stop();
    const ms = performance.now() - started;

    expect(code).toBe(0);
    expect(ms).toBeLessThan(10_000);
    const said = outputSince(platform, stoppedFrom);
    expect(said).not.toContain("restarting cart");
    expect(said).toMatch(/stopped \(exit codes: .*cart=not running/);
    expect(said).toMatch(/catalog=0/);
    expect(processesOfInstance(instance)).toEqual([]);
  }, 120_000);
});

describe("bun run dev when a process fails its first start", () => {
  test("a setup problem no restart fixes (an invalid variable orders rejects): the runner stops at once with exit code 1 and the variable named, restarting nothing", async () => {
    const started = performance.now();
    const error = await startDevInstance({ instancePrefix: "badenv", env: { PLACE_ORDER_WAIT_MS: "soon" } }).then(
      () => undefined,
      (err: Error) => err.message,
    );
    expect(error).toContain("exited with code 1");
    expect(error).toMatch(/invalid environment variable PLACE_ORDER_WAIT_MS: .*\(got "soon"\)/);
    expect(error).toMatch(/dev\s+│ orders exited \(code 1\) before it was healthy/);
    expect(error).not.toMatch(/restarting orders|restart \d in/);
    // At once: not after a crash loop's backoffs.
    expect(performance.now() - started).toBeLessThan(30_000);
  }, 120_000);
});
