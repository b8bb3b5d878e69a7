/**
 * The fault suite: the whole platform under a steady order load while its infrastructure
 * fails — Postgres stopped for 15 s, Redis restarted, RabbitMQ restarted, the orders process
 * SIGKILLed. The servers are the test's own (./private-servers: a Postgres cluster holding
 * every service's database, a redis-server with the append-only file compose runs, a RabbitMQ
 * node), so the machine's shared ones are never touched. After each fault, with the load
 * stopped and everything settled, the test asserts what a shopper and an operator are owed:
 * every accepted order in one final state, nothing charged twice, stock exact, every event
 * delivered once, carts of confirmed orders emptied, health NOT_SERVING during the fault and
 * SERVING after, errors UNAVAILABLE (never INTERNAL), no server working past its caller's
 * deadline, and service resumed within 2 s of the dependency's return. Each fault prints its
 * figures.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createClient, type GrpcClient } from "@bazaar/platform/grpc/client";
import { configureLogging } from "@bazaar/platform/log";
import type { ServiceName } from "@bazaar/platform/service-catalog";
import { eventually } from "@bazaar/testkit/eventually";
import { bearer, registerAndLogin } from "@bazaar/testkit/fixtures";
import { PrivatePostgres, PrivateRabbitMQ, PrivateRedis } from "@bazaar/testkit/private-servers";
import { startTestPlatform, stockedProducts, type TestPlatform } from "@bazaar/testkit/test-platform";
import { Health, HealthCheckResponse_ServingStatus as ServingStatus } from "@bazaar/proto/grpc/health/v1/health_pb";
import { count, noProblems, orderLedger, outboxesDrained, type StockLevels, stockLevels } from "./support/order-ledger.ts";
import { type Checkout, OrderLoad, type Shopper } from "./support/order-load.ts";

const services = ["identity", "catalog", "inventory", "cart", "orders", "payments", "notifications"] as const satisfies readonly ServiceName[];
const withDatabase = ["identity", "catalog", "inventory", "orders", "payments", "notifications"] as const satisfies readonly ServiceName[];
/** Every call of the load (and of the shoppers' retries) has this deadline. */
const deadlineMs = 3_000;
/** A dependency back, the platform must take orders again within this. */
const recoveryBoundMs = 2_000;

let postgres: PrivatePostgres;
let redis: PrivateRedis;
let rabbit: PrivateRabbitMQ;
let platform: TestPlatform;
let shoppers: Shopper[];
let productIds: string[];
const health: Partial<Record<ServiceName, GrpcClient<typeof Health>>> = {};
const figures: string[] = [];

beforeAll(async () => {
  configureLogging("fault-test", "error");
  [postgres, redis, rabbit] = await Promise.all([PrivatePostgres.create(), PrivateRedis.create({ persistent: true }), PrivateRabbitMQ.create()]);
  platform = await startTestPlatform({}, { servers: { postgresUrl: postgres.url(), redisUrl: redis.url, amqpUrl: rabbit.url } });
  for (const name of services) health[name] = createClient(Health, platform.address(name), { defaultTimeoutMs: 500 });
  shoppers = await Promise.all(
    Array.from({ length: 24 }, async () => {
      const { user, tokens } = await registerAndLogin(platform.clients.identity);
      return { id: user.id, auth: bearer(tokens.accessToken) };
    }),
  );
  // Ten products, stocked well beyond what the runs take, so every order can be confirmed.
  const admin = bearer((await platform.clients.identity.login({ email: "admin@bazaar.local", password: "bazaar-admin" })).tokens!.accessToken);
  productIds = (await stockedProducts(platform.clients, 10, 1)).map((p) => p.id);
  for (const productId of productIds) await platform.clients.inventory.adjustStock({ productId, delta: 2_000, reason: "fault suite" }, admin);
}, 180_000);

afterAll(async () => {
  for (const c of Object.values(health)) c?.close();
  await platform?.cleanup();
  await Promise.all([postgres?.destroy(), redis?.destroy(), rabbit?.destroy()]);
  if (figures.length) console.log(`\nFault suite figures\n${figures.join("\n")}`);
}, 120_000);

/** What health said about each service, sampled every 250 ms (a failed check is the code name). */
class HealthWatch {
  readonly samples: { at: number; service: ServiceName; status: string }[] = [];
  private stopped = false;
  private readonly loop: Promise<void>;

  constructor() {
    this.loop = (async () => {
      while (!this.stopped) {
        const at = Date.now();
        await Promise.all(
          services.map(async (service) => {
            const status = await health[service]!.check({ service: "" }).then(
              (r) => ServingStatus[r.status] ?? String(r.status),
              (err: { codeName?: string }) => err.codeName ?? "unreachable",
            );
            this.samples.push({ at, service, status });
          }),
        );
        await Bun.sleep(Math.max(0, 250 - (Date.now() - at)));
      }
    })();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
  }

  /** The services seen not SERVING at some sample in [from, to). */
  notServing(from: number, to: number): Set<ServiceName> {
    return new Set(this.samples.filter((s) => s.at >= from && s.at < to && s.status !== "SERVING").map((s) => s.service));
  }

  /** The first time from `from` on after which every sample of every service is SERVING. */
  allServingFrom(from: number): number | undefined {
    const later = this.samples.filter((s) => s.at >= from);
    const lastBad = later.filter((s) => s.status !== "SERVING").reduce((max, s) => Math.max(max, s.at), -1);
    if (lastBad < 0) return from;
    const next = later.find((s) => s.at > lastBad);
    return next?.at;
  }
}

/** Server calls by duration, summed over every method of each service (grpc_server_handling_seconds). */
async function slowCalls(): Promise<Record<string, { total: number; over2_5s: number; over5s: number }>> {
  const out: Record<string, { total: number; over2_5s: number; over5s: number }> = {};
  for (const service of services) {
    const text = await fetch(`${platform.httpUrl(service)}/metrics`, { signal: AbortSignal.timeout(2_000) }).then(
      (r) => r.text(),
      () => "",
    );
    const sum = (le: string) =>
      text
        .split("\n")
        .filter((l) => l.startsWith("grpc_server_handling_seconds_bucket{") && l.includes(`le="${le}"`))
        // A bucket may end with its exemplar (OpenMetrics: "… 12 # {trace_id=…} 0.2 1700000000"): the count is before it.
        .map((l) => l.split(" # ")[0]!)
        .reduce((n, l) => n + Number(l.slice(l.lastIndexOf(" ") + 1)), 0);
    const total = sum("+Inf");
    out[service] = { total, over2_5s: total - sum("2.5"), over5s: total - sum("5") };
  }
  return out;
}

/** A fault: what breaks, for how long, and which services must say so. */
interface Fault {
  name: string;
  /** Breaks it; resolves when it is broken. */
  inject(): Promise<void>;
  /** How long it stays broken. */
  holdMs: number;
  /** Repairs it; resolves when the dependency is back (a server accepting connections, a process healthy). */
  heal(): Promise<void>;
  /** Services whose health must not be SERVING while it is broken. */
  notServing: readonly ServiceName[];
}

interface Outcome {
  checkouts: Checkout[];
  skipped: number;
  faultAt: number;
  backAt: number;
  watch: HealthWatch;
  slow: { before: Awaited<ReturnType<typeof slowCalls>>; after: Awaited<ReturnType<typeof slowCalls>> };
  /** Stock before the load, for the ledger. */
  stockBefore: StockLevels;
}

/** Runs the load for 3 s, breaks `fault` for its hold time, repairs it, loads 6 s more, then lets everything settle. */
async function underLoad(fault: Fault): Promise<Outcome> {
  const stockBefore = await stockLevels(platform, productIds);
  const slowBefore = await slowCalls();
  const card = { number: "4242 4242 4242 4242", expiryMonth: 12, expiryYear: new Date().getFullYear() + 3, cvc: "123" };
  const load = new OrderLoad(platform.clients, shoppers, productIds, { perSecond: 5, deadlineMs, patienceMs: 60_000, card });
  const watch = new HealthWatch();
  load.start();
  await Bun.sleep(3_000);
  const faultAt = Date.now();
  await fault.inject();
  await Bun.sleep(fault.holdMs);
  await fault.heal();
  const backAt = Date.now();
  await Bun.sleep(6_000);
  await load.stop();
  await Bun.sleep(1_000);
  await watch.stop();
  // Every process lived through it (a process that died would take its last words with it).
  const dead = services.filter((name) => platform.process(name).proc.exitCode !== null || platform.process(name).proc.signalCode);
  for (const name of dead)
    console.log(`${name} exited during "${fault.name}"; its last lines:\n${platform.process(name).output().split("\n").slice(-40).join("\n")}`);
  expect(dead).toEqual([]);
  // Settled: nothing left in any outbox, so every event has been handed to RabbitMQ.
  await outboxesDrained(platform, `"${fault.name}"`);
  return {
    checkouts: load.checkouts,
    skipped: load.skipped,
    faultAt,
    backAt,
    watch,
    slow: { before: slowBefore, after: await slowCalls() },
    stockBefore,
  };
}

/** Messages in each queue of the test's RabbitMQ node. */
async function queueDepths(): Promise<string[][]> {
  return (await rabbit.ctl(["list_queues", "name", "messages"]))
    .trim()
    .split("\n")
    .map((l) => l.split("\t"))
    .filter(([name]) => name && name !== "name");
}

/** Asserts what every fault owes the shoppers and the operators, and records the figures. */
async function expectKept(fault: Fault, o: Outcome): Promise<void> {
  // Deliveries that failed during the fault wait out growing delays (2, 4, 8, 16 s …) in the
  // retry queues: after a 15 s outage the last come back about as long after the return.
  const retriesDrained = await eventually(
    async () => ((await queueDepths()).some(([name, n]) => /\.retry/.test(name!) && n !== "0") ? undefined : Date.now()),
    { what: `the retry queues to drain after "${fault.name}"`, timeoutMs: 60_000 },
  );
  const { checkouts } = o;
  const placed = checkouts.filter((c) => c.orderId);
  const ids = placed.map((c) => c.orderId!);
  const ledger = await orderLedger(platform, checkouts, productIds, o.stockBefore);
  const orders = await platform.query<{ id: string; created_at: Date }>("orders", "select id, created_at from orders where id = any($1)", [ids]);
  // Orders the first, failed try of PlaceOrder had made (the retry with the same key found them).
  const createdDespiteError = placed.filter(
    (c) => c.firstError?.step === "place order" && (orders.find((r) => r.id === c.orderId)?.created_at.getTime() ?? Infinity) < c.firstError.at + 50,
  ).length;
  const errors = checkouts.flatMap((c) => [...(c.firstError ? [c.firstError] : []), ...c.retryErrors]);
  // An internal error names its trace: show what the servers logged under it.
  for (const trace of new Set(errors.flatMap((e) => /\(trace (\w+)\)/.exec(e.message)?.[1] ?? []))) {
    const lines = services.flatMap((name) =>
      platform
        .process(name)
        .output()
        .split("\n")
        .filter((l) => l.includes(trace)),
    );
    console.log(`logged under trace ${trace}:\n${lines.join("\n") || "(nothing)"}`);
  }
  const recovered = checkouts.filter((c) => c.startedAt >= o.backAt && c.acceptedFirstTry).sort((a, b) => a.acceptedAt! - b.acceptedAt!)[0];
  const recoveryMs = recovered ? recovered.acceptedAt! - o.backAt : undefined;
  const servingAgain = o.watch.allServingFrom(o.backAt);
  const slow = Object.fromEntries(
    Object.entries(o.slow.after).map(([s, a]) => {
      const b = o.slow.before[s]!;
      const restarted = a.total < b.total;
      return [s, restarted ? a : { total: a.total - b.total, over2_5s: a.over2_5s - b.over2_5s, over5s: a.over5s - b.over5s }];
    }),
  );
  const queues = await queueDepths();

  const row = {
    fault: fault.name,
    attempted: checkouts.length,
    skipped: o.skipped,
    accepted: placed.length,
    acceptedFirstTry: placed.filter((c) => c.acceptedFirstTry).length,
    createdDespiteError,
    confirmed: ledger.confirmed.length,
    cancelled: ledger.cancelled.length,
    unfinished: ledger.problems.unfinished.length,
    abandoned: count(
      checkouts.filter((c) => c.abandoned),
      (c) => c.abandoned!,
    ),
    errorsByCode: count(errors, (e) => `${e.step}: ${e.code}`),
    // When the errors happened: before the fault, while it lasted, after the dependency was back (seconds after its return).
    errorsByPhase: count(errors, (e) => (e.at < o.faultAt ? "before" : e.at < o.backAt ? "during" : `after +${Math.floor((e.at - o.backAt) / 1000)}s`)),
    slowestErrorMs: Math.max(0, ...errors.map((e) => e.ms)),
    recoveryMs,
    allServingAgainMs: servingAgain === undefined ? undefined : servingAgain - o.backAt,
    notServingDuringFault: [...o.watch.notServing(o.faultAt, o.backAt)].sort(),
    retriesDrainedMs: retriesDrained - o.backAt,
    serverCallsOver2_5s: Object.fromEntries(
      Object.entries(slow)
        .filter(([, v]) => v.over2_5s > 0)
        .map(([s, v]) => [s, v.over2_5s]),
    ),
  };
  figures.push(JSON.stringify(row));
  console.log(`${fault.name}: ${JSON.stringify(row, null, 1)}`);

  // The load did shop: orders before and after the fault.
  expect(placed.length).toBeGreaterThan(20);
  // Every accepted order final, charged once if confirmed and never if cancelled, stock exact
  // (on hand fell by the units confirmed, nothing left reserved), every event delivered once
  // (one notice per final order), the cart of every confirmed order emptied, and a checkout
  // ends with an order or with a step that failed before PlaceOrder was sent.
  expect(ledger.problems).toEqual(noProblems);
  // Nothing dead-lettered (and the retry queues drained, above).
  expect(queues.filter(([name, n]) => /\.dlq$/.test(name!) && n !== "0")).toEqual([]);
  // Errors say the platform is unavailable: never INTERNAL, UNKNOWN or anything a shopper should fix.
  expect(errors.filter((e) => e.code !== "UNAVAILABLE")).toEqual([]);
  // Health told the truth: not SERVING while broken where it must be, SERVING again after.
  for (const service of fault.notServing) expect(row.notServingDuringFault).toContain(service);
  expect(servingAgain).toBeDefined();
  // No server worked far past a caller's deadline (every call has at most a few seconds).
  expect(Object.entries(slow).filter(([, v]) => v.over5s > 0)).toEqual([]);
  // Orders are taken again within 2 s of the dependency's return.
  expect(recoveryMs).toBeDefined();
  expect(recoveryMs!).toBeLessThanOrEqual(recoveryBoundMs);
}

describe("under a steady order load (5 checkouts/s from 24 shoppers)", () => {
  test("Postgres stopped for 15 s: every service with a database reports NOT_SERVING, checkouts fail UNAVAILABLE, nothing is lost or charged twice, orders are taken again within 2 s", async () => {
    const fault: Fault = {
      name: "Postgres stopped 15 s",
      inject: () => postgres.stop("immediate"),
      holdMs: 15_000,
      heal: () => postgres.start(),
      notServing: withDatabase,
    };
    await expectKept(fault, await underLoad(fault));
  }, 240_000);

  test("Redis restarted: carts survive (append-only file), cart and identity report NOT_SERVING while it is down, nothing is lost", async () => {
    // A shopper outside the load with a cart of two lines, to see it again after the restart.
    const keeper = bearer((await registerAndLogin(platform.clients.identity)).tokens.accessToken);
    await platform.clients.cart.addItem({ productId: productIds[0]!, quantity: 2 }, keeper);
    const { cart: kept } = await platform.clients.cart.addItem({ productId: productIds[1]!, quantity: 1 }, keeper);
    const fault: Fault = {
      name: "Redis restarted (down 3 s)",
      inject: () => redis.stop("SIGTERM"),
      holdMs: 3_000,
      heal: () => redis.start(),
      notServing: ["cart", "identity"],
    };
    await expectKept(fault, await underLoad(fault));
    const { cart: after } = await platform.clients.cart.getCart({}, keeper);
    expect(after?.lines.map((l) => [l.productId, l.quantity])).toEqual(kept!.lines.map((l) => [l.productId, l.quantity]));
  }, 240_000);

  test("RabbitMQ restarted: shoppers see nothing (the outboxes hold the events), every event is delivered once afterwards", async () => {
    const fault: Fault = {
      name: "RabbitMQ restarted",
      inject: () => rabbit.stop(),
      holdMs: 0,
      heal: () => rabbit.start(),
      notServing: [],
    };
    const outcome = await underLoad(fault);
    await expectKept(fault, outcome);
    expect(outcome.checkouts.filter((c) => c.firstError)).toEqual([]);
  }, 240_000);

  test("the orders process SIGKILLed and restarted: its checkouts end in one final state, charged once, and orders are taken again within 2 s of its return", async () => {
    const fault: Fault = {
      name: "orders SIGKILLed, restarted at once",
      inject: () => platform.stop("orders", "SIGKILL"),
      holdMs: 0,
      heal: () => platform.start("orders"),
      notServing: ["orders"],
    };
    await expectKept(fault, await underLoad(fault));
  }, 240_000);
});
