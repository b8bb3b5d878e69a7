/**
 * `bun run bench`: the numbers for the project's issue report, measured in one run.
 *
 * 1. Cold start: `bun scripts/dev.ts` on free ports (DEV_PORT_OFFSET) with a fresh DEV_INSTANCE,
 *    so each run creates, migrates and seeds its databases; time from spawn until the runner
 *    prints "all healthy in"; three runs, min and median.
 * 2. Idle memory of each platform process once healthy and idle: RSS (/proc/<pid>/status), PSS
 *    and private (/proc/<pid>/smaps_rollup), and the platform's totals.
 * 3. Throughput and latency, each scenario with the same concurrency and duration and the load
 *    generator in its own process:
 *      gRPC: catalog GetProduct on a cache hit vs a bare grpc-js server answering a fixed
 *            GetProductResponse (same generator: the platform's typed client);
 *      HTTP: the BFF's GET /api/products/:id vs a bare Hono handler answering the same body
 *            (wrk when installed, else a Bun fetch generator);
 *      plus a diagnostic row each: Bazaar's chassis answering the fixed response with no
 *      Redis or upstream, to split the overhead into "chassis" and "handler work"; then the
 *      product page's freshness (a price or stock change sent → the page shows it) and the
 *      upstream calls a warm page makes.
 *    Orders end to end (PlaceOrder through the saga), as fast as BENCH_ORDERS_CONCURRENCY buyers
 *    can go and at a fixed share of that rate, each with what one order cost over its measured
 *    window: CPU ms of every platform process, Postgres backends, RabbitMQ and Redis; SQL
 *    statements (bazaar_db_queries_total), Postgres commits and rows (pg_stat_database), RPCs
 *    and broker messages (see scripts/bench/cost.ts).
 * 4. Cleans up everything it started: the dev runner (SIGINT), the helper servers, the bench
 *    instances' databases and Redis keys. Bounded: a watchdog ends the run (cleaning up) if it
 *    takes longer than BENCH_TIMEOUT_S.
 *
 * Prints a table and writes test-artifacts/bench.json. Knobs (environment): BENCH_COLD_RUNS,
 * BENCH_CONCURRENCY, BENCH_WARMUP_S, BENCH_DURATION_S, BENCH_IDLE_S, BENCH_TIMEOUT_S,
 * BENCH_ORDERS_CONCURRENCY, BENCH_ORDERS_FIXED_SHARE, BENCH_HTTP_LOADER=bun (skip wrk). All traffic goes to 127.0.0.1.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { toBinary } from "@bufbuild/protobuf";
import { createClient } from "@bazaar/platform/grpc/client";
import { type ChildProcess, startProcess } from "@bazaar/platform/processes";
import { repoRoot, testEnv } from "@bazaar/testkit/fixtures";
import { CatalogService, GetProductResponseSchema } from "@bazaar/proto/bazaar/catalog/v1/catalog_pb";
import { IdentityService } from "@bazaar/proto/bazaar/identity/v1/identity_pb";
import { InventoryService } from "@bazaar/proto/bazaar/inventory/v1/inventory_pb";
import { type LoadResult, parseResultLine, phaseLines, round3 } from "./bench/common.ts";
import {
  type CostPerUnit,
  type CostProbe,
  type CostSnapshot,
  costBetween,
  costProbe,
  cpuSeconds,
  machineTicks,
  okCallsBetween,
  pidsNamed,
} from "./bench/cost.ts";
import { type DevInstance, type DevInstanceHandle, pickPortOffset, portsAt, readProc, startDevInstance } from "./dev-instance.ts";

// ───────────────────────────── configuration ─────────────────────────────

function knob(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) {
    process.stderr.write(`${name} must be a positive number, got ${JSON.stringify(raw)}\n`);
    process.exit(2);
  }
  return n;
}

const config = {
  coldRuns: Math.round(knob("BENCH_COLD_RUNS", 3)),
  concurrency: Math.round(knob("BENCH_CONCURRENCY", 32)),
  warmupS: knob("BENCH_WARMUP_S", 2),
  durationS: knob("BENCH_DURATION_S", 8),
  idleS: knob("BENCH_IDLE_S", 2),
  timeoutS: knob("BENCH_TIMEOUT_S", 300),
  /** Buyers placing orders at once when finding the maximum order rate. */
  ordersConcurrency: Math.round(knob("BENCH_ORDERS_CONCURRENCY", 16)),
  /** The fixed order rate for latency, as a share of the maximum measured. */
  ordersFixedShare: knob("BENCH_ORDERS_FIXED_SHARE", 0.5),
  /** How long a dev runner may take to print "all healthy in". */
  healthTimeoutMs: 90_000,
};

const benchStarted = performance.now();

function say(text: string): void {
  process.stdout.write(`bench │ ${text}\n`);
}

// ───────────────────────────── /proc helpers ─────────────────────────────

/** Resident set size in MiB (VmRSS of /proc/<pid>/status), or undefined if gone. */
function rssMiB(pid: number): number | undefined {
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readProc(`/proc/${pid}/status`) ?? "");
  return m ? Math.round((Number(m[1]) / 1024) * 10) / 10 : undefined;
}

/**
 * A process's memory in MiB from /proc/<pid>/smaps_rollup: PSS (each shared page split
 * among the processes that map it) and private (pages no other process maps). VmRSS counts
 * every shared page in full in every process — on Bun, the ~40 MB of the bun executable's
 * pages each process touches — so a sum of RSS counts those once per process.
 */
function sharedAwareMiB(pid: number): { pss?: number; private?: number } {
  const text = readProc(`/proc/${pid}/smaps_rollup`) ?? "";
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+)\\s+kB`, "m").exec(text)?.[1] ?? Number.NaN);
  const mib = (k: number) => (Number.isFinite(k) ? Math.round((k / 1024) * 10) / 10 : undefined);
  return { pss: mib(kb("Pss")), private: mib(kb("Private_Clean") + kb("Private_Dirty")) };
}

// ───────────────────────────── what to clean up ─────────────────────────────

/** Helper processes (servers, load generators). */
const children: ChildProcess[] = [];
/** Dev instances not cleaned up yet (each from the moment its runner is spawned). */
const platforms: DevInstanceHandle[] = [];

/** Everything the bench starts runs with this one's environment, without trace export. */
const noTraces = { OTEL_EXPORTER_OTLP_ENDPOINT: undefined };

function spawn(name: string, cmd: string[], env: Record<string, string | undefined> = {}, onLine?: (line: string) => void): ChildProcess {
  const child = startProcess({ name, cmd, cwd: repoRoot, env: { ...process.env, ...noTraces, ...env }, onLine: onLine && ((line) => onLine(line)) });
  children.push(child);
  return child;
}

function tail(child: ChildProcess, lines = 25): string {
  return child.output().split("\n").slice(-lines).join("\n");
}

/** Stops a dev instance (if still running) and removes its processes, databases and Redis keys. */
async function removePlatform(p: DevInstanceHandle): Promise<void> {
  const i = platforms.indexOf(p);
  if (i >= 0) platforms.splice(i, 1);
  try {
    const { redisKeysDeleted } = await p.cleanup();
    if (redisKeysDeleted) say(`deleted ${redisKeysDeleted} Redis key(s) under ${p.redisPrefix}`);
  } catch (err) {
    say((err as Error).message);
  }
}

let cleaning: Promise<void> | undefined;

/** Stops every process the bench started and removes every instance's data. Idempotent. */
function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    // Helpers get SIGTERM with a bounded wait; dev instances stop with SIGINT (like Ctrl-C).
    await Promise.all([...children.map((c) => c.stop("SIGTERM", 5_000)), ...platforms.slice().map(removePlatform)]);
  })();
  return cleaning;
}

// ───────────────────────────── 1. cold start ─────────────────────────────

/** A fresh dev instance on `offset` (so each run creates, migrates and seeds its databases). */
function startPlatform(run: number, offset: number): Promise<DevInstance> {
  return startDevInstance({
    name: `dev#${run}`,
    instancePrefix: "bench",
    portOffset: offset,
    timeoutMs: config.healthTimeoutMs,
    // SHUTDOWN_DRAIN_MS stays at the short default: it keeps the stop between runs quick and does not change the start.
    env: noTraces,
    onSpawn: (p) => platforms.push(p),
  });
}

/** Stops a dev runner with SIGINT, waits for it and its services, and drops its data. */
async function stopPlatform(p: DevInstance): Promise<number> {
  const t0 = performance.now();
  const code = await p.stop();
  const ms = Math.round(performance.now() - t0);
  if (code !== 0) say(`dev runner of ${p.instance} exited with code ${code}`);
  await removePlatform(p);
  return ms;
}

// ───────────────────────────── 3. load ─────────────────────────────

interface CpuSample {
  at: number;
  pids: Map<number, number>;
  machine: { busy: number; total: number };
}

function sampleCpu(pids: number[]): CpuSample {
  return { at: performance.now(), pids: new Map(pids.map((p) => [p, cpuSeconds(p)])), machine: machineTicks() };
}

/** Cores used by each group of processes between two samples, and the machine's busy share. */
function cpuBetween(a: CpuSample, b: CpuSample, groups: Record<string, number[]>): Record<string, number> {
  const seconds = (b.at - a.at) / 1000;
  const out: Record<string, number> = {};
  for (const [name, pids] of Object.entries(groups)) {
    const used = pids.reduce((sum, p) => sum + (b.pids.get(p) ?? 0) - (a.pids.get(p) ?? 0), 0);
    out[name] = Math.round((used / seconds) * 100) / 100;
  }
  const total = b.machine.total - a.machine.total;
  out.machineBusyPct = total > 0 ? Math.round(((b.machine.busy - a.machine.busy) / total) * 1000) / 10 : 0;
  // Busy cores not used by the server, the load generator or Redis: other processes on the
  // machine (and kernel work not charged to a process). High values mean noisy numbers.
  const busyCores = (out.machineBusyPct / 100) * cpus().length;
  out.other = Math.max(0, Math.round((busyCores - (out.server ?? 0) - (out.loader ?? 0) - (out.redis ?? 0)) * 100) / 100);
  return out;
}

interface Scenario {
  key: string;
  label: string;
  kind: "grpc" | "http";
  role: "baseline" | "diagnostic" | "measured";
  result: LoadResult;
  cpu: Record<string, number>;
}

/** Waits for a helper server's `ready …` line; returns the numbers on it. */
async function waitReady(child: ChildProcess, timeoutMs = 20_000): Promise<number[]> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    const line = child
      .output()
      .split("\n")
      .find((l) => l.startsWith("ready "));
    if (line) return line.slice("ready ".length).split(" ").map(Number);
    if (child.proc.exitCode !== null || child.proc.signalCode !== null) break;
    await Bun.sleep(20);
  }
  throw new Error(`${child.name} did not become ready:\n${tail(child)}`);
}

/**
 * Runs a load generator process (grpc-load.ts, http-load.ts, orders-load.ts), sampling CPU over
 * its window; `onPhase` hears when the measured window starts ("measure") and ends ("done").
 */
async function runLoader(
  name: string,
  cmd: string[],
  cpuGroups: Record<string, number[]>,
  onPhase?: (phase: "measure" | "done") => void,
): Promise<{ result: LoadResult; cpu: Record<string, number> }> {
  let before: CpuSample | undefined;
  let after: CpuSample | undefined;
  let result: LoadResult | undefined;
  const watched = () => [...new Set(Object.values(cpuGroups).flat())];
  const loader = spawn(name, cmd, {}, (line) => {
    if (line === phaseLines.measure) {
      before = sampleCpu([...watched(), loader.proc.pid]);
      onPhase?.("measure");
    } else if (line === phaseLines.done) {
      after = sampleCpu([...watched(), loader.proc.pid]);
      onPhase?.("done");
    } else result ??= parseResultLine(line);
  });
  const limit = (config.warmupS + config.durationS + 30) * 1000;
  const code = await Promise.race([loader.proc.exited, Bun.sleep(limit).then(() => "timeout" as const)]);
  if (code === "timeout") {
    await loader.stop("SIGKILL");
    throw new Error(`${name} did not finish within ${limit} ms:\n${tail(loader)}`);
  }
  // The last lines may still be in the pipe when the process has exited.
  for (let i = 0; i < 50 && !result; i++) await Bun.sleep(10);
  if (code !== 0 || !result) throw new Error(`${name} failed (exit code ${code}):\n${tail(loader)}`);
  const cpu = before && after ? cpuBetween(before, after, { ...cpuGroups, loader: [loader.proc.pid] }) : {};
  return { result, cpu };
}

/** Parses wrk's latency strings: "812.00us", "1.23ms", "2.01s". */
function wrkMs(text: string): number {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(text.trim());
  if (!m) throw new Error(`cannot read wrk latency ${JSON.stringify(text)}`);
  const v = Number(m[1]);
  const factor = { us: 0.001, ms: 1, s: 1000, m: 60_000 }[m[2] as "us" | "ms" | "s" | "m"];
  return round3(v * factor);
}

const wrkPath = process.env.BENCH_HTTP_LOADER === "bun" ? null : Bun.which("wrk");
const wrkVersion = wrkPath ? (/wrk\s+(\S+)/.exec(Bun.spawnSync([wrkPath, "-v"]).stdout.toString())?.[1] ?? "") : "";
const httpTool = wrkPath ? `wrk ${wrkVersion}`.trim() : "bun fetch (scripts/bench/http-load.ts)";

async function runWrk(name: string, url: string, cpuGroups: Record<string, number[]>): Promise<{ result: LoadResult; cpu: Record<string, number> }> {
  const wrk = wrkPath!;
  const args = (seconds: number) => [wrk, "-t1", `-c${config.concurrency}`, `-d${seconds}s`, "--latency", "--timeout", "10s", url];
  const run = async (label: string, seconds: number, sample: boolean) => {
    const pids = () => [...new Set(Object.values(cpuGroups).flat())];
    const child = spawn(label, args(seconds));
    const before = sample ? sampleCpu([...pids(), child.proc.pid]) : undefined;
    // Sample just before wrk's window ends, while wrk is still alive (its CPU counts then).
    const after = sample ? await Bun.sleep(seconds * 1000 - 100).then(() => sampleCpu([...pids(), child.proc.pid])) : undefined;
    const code = await Promise.race([child.proc.exited, Bun.sleep((seconds + 30) * 1000).then(() => "timeout" as const)]);
    if (code === "timeout") {
      await child.stop("SIGKILL");
      throw new Error(`${label} did not finish`);
    }
    await Bun.sleep(20);
    if (code !== 0) throw new Error(`${label} failed (exit code ${code}):\n${tail(child)}`);
    return { output: child.output(), before, after, pid: child.proc.pid };
  };
  await run(`${name} warm-up`, config.warmupS, false);
  const measured = await run(name, config.durationS, true);
  const { output, before, after } = measured;
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(output)?.[1];
  const p50 = /^\s*50%\s+(\S+)/m.exec(output)?.[1];
  const p99 = /^\s*99%\s+(\S+)/m.exec(output)?.[1];
  const total = /(\d+) requests in ([\d.]+)(\w+)/.exec(output);
  if (!rps || !p50 || !p99 || !total) throw new Error(`cannot read wrk's output:\n${output}`);
  const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(output)?.[1] ?? 0);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(output);
  const socketErrors = sock ? Number(sock[1]) + Number(sock[2]) + Number(sock[3]) + Number(sock[4]) : 0;
  const mean = /Latency\s+(\S+)\s+\S+\s+(\S+)/.exec(output);
  // wrk counts non-2xx answers as requests; report only good ones as calls/s.
  const calls = Number(total[1]) - non2xx;
  const durationS = Number(total[2]) * (total[3] === "ms" ? 0.001 : total[3] === "m" ? 60 : 1);
  const result: LoadResult = {
    tool: httpTool,
    calls,
    errors: non2xx + socketErrors,
    ...(non2xx + socketErrors ? { firstError: `${non2xx} non-2xx answers, ${socketErrors} socket errors` } : {}),
    durationS: round3(durationS),
    rps: Math.round(Number(rps) * (calls / Math.max(1, Number(total[1]))) * 10) / 10,
    p50Ms: wrkMs(p50),
    p99Ms: wrkMs(p99),
    ...(mean ? { meanMs: wrkMs(mean[1]!), maxMs: wrkMs(mean[2]!) } : {}),
    concurrency: config.concurrency,
  };
  const cpu = before && after ? cpuBetween(before, after, { ...cpuGroups, loader: [measured.pid] }) : {};
  return { result, cpu };
}

/** The flags every Bun load generator (grpc-load.ts, http-load.ts) takes. */
const loadFlags = () => ["--concurrency", String(config.concurrency), "--warmup", String(config.warmupS), "--duration", String(config.durationS)];

function grpcLoadCmd(addr: string, id: string): string[] {
  return ["bun", "scripts/bench/grpc-load.ts", "--addr", addr, "--id", id, ...loadFlags()];
}

async function httpLoad(name: string, url: string, cpuGroups: Record<string, number[]>) {
  if (wrkPath) return runWrk(name, url, cpuGroups);
  return runLoader(name, ["bun", "scripts/bench/http-load.ts", "--url", url, ...loadFlags()], cpuGroups);
}

/** What {@link productPageFreshness} measured. */
interface Freshness {
  /** Milliseconds from sending UpdateProduct (a new price) until the product page showed it, one per round. */
  priceMs: number[];
  /** The same from sending AdjustStock until the page showed the new stock. */
  stockMs: number[];
  /** gRPC calls the BFF made per warm product page (from its grpc_client_handled_total), by method. */
  upstreamCallsPerPage: Record<string, number>;
}

/** The BFF's gRPC calls so far, by method, from its /metrics. */
async function bffUpstreamCalls(metricsUrl: string): Promise<Record<string, number>> {
  const calls: Record<string, number> = {};
  for (const line of (await (await fetch(metricsUrl)).text()).split("\n")) {
    const m = /^grpc_client_handled_total\{[^}]*grpc_method="(\w+)"[^}]*\} (\d+)/.exec(line);
    if (m) calls[m[1]!] = (calls[m[1]!] ?? 0) + Number(m[2]);
  }
  return calls;
}

/**
 * How stale the product page can be: `rounds` times, change the price (UpdateProduct) and then
 * the stock (AdjustStock) of the product, as an admin over gRPC, and ask the page until it shows
 * the change (timed from sending the call, each wait bounded by 5 s). And how many upstream calls
 * a warm page makes: the BFF's gRPC client counter around 200 pages. Puts the price back after.
 */
async function productPageFreshness(p: DevInstance, id: string, rounds: number): Promise<Freshness> {
  const grpcAddr = (name: string) => `127.0.0.1:${p.ports[name]?.grpc}`;
  const identity = createClient(IdentityService, grpcAddr("identity"));
  const catalog = createClient(CatalogService, grpcAddr("catalog"));
  const inventory = createClient(InventoryService, grpcAddr("inventory"));
  const url = `${p.bffUrl}/api/products/${id}`;
  const show = async () => (await (await fetch(url)).json()) as { product: { price: { amountMinor: number; currency: string } }; stock: { available: number } };
  const until = async (what: string, since: number, shown: (page: Awaited<ReturnType<typeof show>>) => boolean) => {
    while (!shown(await show())) if (performance.now() - since > 5_000) throw new Error(`the product page did not show the ${what} within 5 s`);
    return Math.round((performance.now() - since) * 10) / 10;
  };
  try {
    const login = await identity.login({ email: "admin@bazaar.local", password: "bazaar-admin" });
    const admin = { metadata: { authorization: `Bearer ${login.tokens!.accessToken}` } };
    const metricsUrl = `http://127.0.0.1:${p.ports.bff?.metrics}/metrics`;
    const pages = 200;
    await show();
    const before = await bffUpstreamCalls(metricsUrl);
    for (let i = 0; i < pages; i++) await show();
    const after = await bffUpstreamCalls(metricsUrl);
    const upstreamCallsPerPage: Record<string, number> = {};
    for (const [method, n] of Object.entries(after)) if (n > (before[method] ?? 0)) upstreamCallsPerPage[method] = round3((n - (before[method] ?? 0)) / pages);

    const first = await show();
    const setPrice = (amountMinor: number) =>
      catalog.updateProduct(
        { product: { id, price: { currencyCode: first.product.price.currency, amountMinor: BigInt(amountMinor) } }, updateMask: { paths: ["price"] } },
        admin,
      );
    const priceMs: number[] = [];
    const stockMs: number[] = [];
    for (let round = 1; round <= rounds; round++) {
      const price = first.product.price.amountMinor + round;
      let t0 = performance.now();
      await setPrice(price);
      priceMs.push(await until("new price", t0, (x) => x.product.price.amountMinor === price));
      const available = (await show()).stock.available + 1;
      t0 = performance.now();
      await inventory.adjustStock({ productId: id, delta: 1, reason: "bench: page freshness" }, admin);
      stockMs.push(await until("new stock", t0, (x) => x.stock.available === available));
    }
    await setPrice(first.product.price.amountMinor);
    return { priceMs, stockMs, upstreamCallsPerPage };
  } finally {
    identity.close();
    catalog.close();
    inventory.close();
  }
}

/**
 * Snapshots of a probe at a load run's "measure" and "done" lines, and the cost per unit of
 * work between them. A probe that fails (a /metrics not answering) costs the table, not the run.
 */
function costWindow(probe: CostProbe) {
  let start: Promise<CostSnapshot | undefined> | undefined;
  let end: Promise<CostSnapshot | undefined> | undefined;
  const snapshot = () =>
    probe.snapshot().catch((err: Error) => {
      say(`cannot read the cost counters: ${err.message}`);
      return undefined;
    });
  return {
    onPhase(phase: "measure" | "done") {
      if (phase === "measure") start = snapshot();
      else end = snapshot();
    },
    /** The cost per order placed (PlaceOrder answered OK) inside the window. */
    async cost(): Promise<CostPerUnit | undefined> {
      const [a, b] = await Promise.all([start, end]);
      return a && b ? costBetween(a, b, okCallsBetween(a, b, "bazaar.orders.v1.OrdersService/PlaceOrder")) : undefined;
    },
  };
}

/** The per-order cost of each orders run, one column per run. */
function costTable(runs: { label: string; cost?: CostPerUnit }[], processes: string[]): string[] {
  const measured = runs.filter((r): r is { label: string; cost: CostPerUnit } => r.cost !== undefined);
  if (measured.length === 0) return ["   (no per-order cost: the cost counters could not be read)"];
  const n = (x: number | undefined, digits = 1) => fmtNum(x ?? 0, digits);
  const row = (what: string, value: (c: CostPerUnit) => string) => [what, ...measured.map((r) => value(r.cost))];
  const services = [...new Set(measured.flatMap((r) => Object.keys(r.cost.grpcCalls)))];
  const cpuTotal = (c: CostPerUnit) => Object.values(c.cpuMs).reduce((a, b) => a + b, 0) + c.postgresBackendsMs + c.rabbitmqMs + c.redisMs;
  const rows = [
    ...processes.map((p) => row(`CPU ms: ${p}`, (c) => n(c.cpuMs[p], 2))),
    row("CPU ms: Postgres, backends of the bench's databases", (c) => n(c.postgresBackendsMs, 2)),
    row("CPU ms: RabbitMQ (beam.smp) ¹", (c) => n(c.rabbitmqMs, 2)),
    row("CPU ms: Redis (redis-server) ¹", (c) => n(c.redisMs, 2)),
    row("CPU ms: all of the above", (c) => n(cpuTotal(c), 2)),
    row("CPU ms: other postgres processes ²", (c) => n(c.postgresOtherMs, 2)),
    ...processes.filter((p) => measured.some((r) => (r.cost.statements[p] ?? 0) > 0)).map((p) => row(`SQL statements: ${p}`, (c) => n(c.statements[p]))),
    row("SQL statements: all ³", (c) => n(c.statements.all)),
    row("Postgres commits (xact_commit) ⁴", (c) => n(c.pgStat.xact_commit)),
    row("Postgres rollbacks", (c) => n(c.pgStat.xact_rollback)),
    row("rows inserted / updated / deleted", (c) => `${n(c.pgStat.tup_inserted)} / ${n(c.pgStat.tup_updated)} / ${n(c.pgStat.tup_deleted)}`),
    row("rows fetched (index) / returned (scans)", (c) => `${n(c.pgStat.tup_fetched)} / ${n(c.pgStat.tup_returned)}`),
    ...services.map((svc) => row(`gRPC calls served: ${svc}`, (c) => n(c.grpcCalls[svc]))),
    row("messages published / consumed", (c) => `${n(c.messagesPublished)} / ${n(c.messagesConsumed)}`),
    row("machine busy over the window", (c) => `${c.machineBusyPct.toFixed(0)}%`),
  ];
  return [
    table(["per order", ...measured.map((r) => r.label)], rows, ["l", ...measured.map(() => "r" as const)]),
    "   per order placed in the measured window (PlaceOrder answered OK, counted by orders' /metrics, so orders straddling the window's edges",
    "   count as their CPU there does); CPU from /proc/<pid>/stat (utime + stime); the Postgres backends are those pg_stat_activity",
    "   lists for the bench's databases (pool connections opened during the window count from zero).",
    "   ¹ the whole server, shared with everyone on this machine: other users' traffic counts too.",
    "   ² every other postgres process on the machine (WAL writer, checkpointer, autovacuum, and other clients' backends): not the bench's alone.",
    "   ³ bazaar_db_queries_total deltas from every process's /metrics: queries, plus BEGIN/COMMIT and SAVEPOINT/RELEASE.",
    "   ⁴ pg_stat_database deltas summed over the bench's databases; every statement outside a transaction is a commit too,",
    "     and backends report at most once a second, so a window's edges blur by up to a second of work.",
  ];
}

// ───────────────────────────── output ─────────────────────────────

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : Math.round(((s[mid - 1]! + s[mid]!) / 2) * 10) / 10;
};

function table(header: string[], rows: string[][], align: ("l" | "r")[] = []): string {
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => (r[c] ?? "").length)));
  const fmt = (cells: string[]) =>
    cells
      .map((cell, c) => (align[c] === "r" ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!)))
      .join("  ")
      .trimEnd();
  return [fmt(header), fmt(widths.map((w) => "─".repeat(w))), ...rows.map(fmt)].map((l) => `  ${l}`).join("\n");
}

const fmtNum = (n: number | undefined, digits = 0) =>
  n === undefined ? "—" : n.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });

// ───────────────────────────── main ─────────────────────────────

let interrupted = false;
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    if (interrupted) return;
    interrupted = true;
    say(`${signal}: stopping and cleaning up…`);
    void cleanup().finally(() => process.exit(130));
  });
}
const watchdog = setTimeout(() => {
  say(`the bench took longer than ${config.timeoutS} s (BENCH_TIMEOUT_S); stopping and cleaning up…`);
  void cleanup().finally(() => process.exit(1));
}, config.timeoutS * 1000);

const report: Record<string, unknown> = {
  startedAt: new Date().toISOString(),
  machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model ?? "", bun: Bun.version, platform: `${process.platform}/${process.arch}` },
  config: { ...config, httpLoader: httpTool, grpcLoader: "grpc-js via @bazaar/platform/grpc/client createClient (scripts/bench/grpc-load.ts)" },
};

let exitCode = 0;
let output = "";
try {
  if (!wrkPath) {
    say(
      process.env.BENCH_HTTP_LOADER === "bun"
        ? "BENCH_HTTP_LOADER=bun: using the Bun fetch load generator for HTTP"
        : "wrk is not installed (apt-get install wrk); falling back to the Bun fetch load generator for HTTP, whose numbers are not comparable with wrk's",
    );
  }
  const offset = pickPortOffset();
  const ports = portsAt(offset);
  say(`DEV_PORT_OFFSET=${offset}: catalog gRPC ${ports.catalog?.grpc}, HTTP ${ports.catalog?.http}; BFF ${ports.bff?.http}`);

  // 1. Cold starts; the last platform stays up for the rest.
  const cold: { run: number; instance: string; wallMs: number; printedMs: number; stopMs?: number }[] = [];
  let platform: DevInstance | undefined;
  for (let run = 1; run <= config.coldRuns; run++) {
    const p = await startPlatform(run, offset);
    say(`cold start ${run}/${config.coldRuns}: healthy ${p.spawnToHealthyMs} ms after spawn (runner says ${p.reportedHealthyMs} ms), instance ${p.instance}`);
    const row: (typeof cold)[number] = { run, instance: p.instance, wallMs: p.spawnToHealthyMs, printedMs: p.reportedHealthyMs };
    cold.push(row);
    if (run < config.coldRuns) row.stopMs = await stopPlatform(p);
    else platform = p;
  }
  if (!platform) throw new Error("no platform started");
  const catalogPid = platform.pids.catalog!;
  const bffPid = platform.pids.bff!;

  // 2. Idle RSS.
  await Bun.sleep(config.idleS * 1000);
  const notes: Record<string, string> = {
    catalog: "gRPC service, Postgres pool, Redis cache, RabbitMQ",
    bff: "Hono HTTP, catalog gRPC client, built web UI",
    cart: "gRPC service, Redis, RabbitMQ",
  };
  const rss: { process: string; pid: number; idleMiB?: number; idlePssMiB?: number; idlePrivateMiB?: number; afterLoadMiB?: number; note: string }[] = [
    ...Object.entries(platform.pids).map(([name, pid]) => ({
      process: name,
      pid,
      idleMiB: rssMiB(pid),
      note: notes[name] ?? "gRPC service, Postgres pool, RabbitMQ",
    })),
    { process: "dev runner", pid: platform.runner.proc.pid, idleMiB: rssMiB(platform.runner.proc.pid), note: "bun scripts/dev.ts (supervisor)" },
  ];
  for (const r of rss) {
    const shared = sharedAwareMiB(r.pid);
    r.idlePssMiB = shared.pss;
    r.idlePrivateMiB = shared.private;
  }
  // The idle platform: every Bazaar process the runner started, and the runner.
  const round1 = (n: number) => Math.round(n * 10) / 10;
  const platformMemory = {
    processes: rss.length,
    rssMiB: round1(rss.reduce((n, r) => n + (r.idleMiB ?? 0), 0)),
    pssMiB: round1(rss.reduce((n, r) => n + (r.idlePssMiB ?? 0), 0)),
    privateMiB: round1(rss.reduce((n, r) => n + (r.idlePrivateMiB ?? 0), 0)),
  };

  // Inputs shared by the scenarios: one product id, its GetProduct response and its JSON body.
  const catalogAddr = platform.catalogGrpc;
  const bffUrl = platform.bffUrl;
  const client = createClient(CatalogService, catalogAddr);
  const page = await client.listProducts({ pageSize: 8 });
  const id = page.products[0]?.id;
  if (!id) throw new Error("the catalog has no products (was it seeded?)");
  let response = await client.getProduct({ id });
  response = await client.getProduct({ id }); // now a cache hit
  client.close();
  const responseB64 = Buffer.from(toBinary(GetProductResponseSchema, response)).toString("base64");
  const productUrl = (base: string) => `${base}/api/products/${id}`;
  let bffBody = "";
  for (let i = 0; i < 2; i++) {
    const res = await fetch(productUrl(bffUrl));
    bffBody = await res.text();
    if (res.status !== 200) throw new Error(`GET ${productUrl(bffUrl)} answered ${res.status}: ${bffBody.slice(0, 300)}`);
  }

  // Baseline and diagnostic servers, each in its own process.
  const echo = spawn("grpc-echo", ["bun", "scripts/bench/grpc-echo.ts", "--port", "0", "--response", responseB64]);
  const bare = spawn("hono-bare", ["bun", "scripts/bench/hono-bare.ts", "--port", "0"], { BENCH_BODY: bffBody });
  const chassis = spawn("chassis-fixed", ["bun", "scripts/bench/chassis-fixed.ts", "--grpc-port", "0", "--http-port", "0", "--response", responseB64], {
    BENCH_BODY: bffBody,
  });
  const [echoPort] = await waitReady(echo);
  // The bare fan-out baseline for the product page: Hono making the BFF's 2 upstream calls (catalog and inventory) to the echo server.
  const fanout = spawn("hono-fanout", ["bun", "scripts/bench/hono-bare.ts", "--port", "0", "--fanout", `127.0.0.1:${echoPort}`, "--calls", "2"], {
    BENCH_BODY: bffBody,
  });
  const [barePort] = await waitReady(bare);
  const [fanoutPort] = await waitReady(fanout);
  const fanoutUrl = `http://127.0.0.1:${fanoutPort}`;
  const [chassisGrpcPort, chassisHttpPort] = await waitReady(chassis);
  const echoAddr = `127.0.0.1:${echoPort}`;
  const chassisAddr = `127.0.0.1:${chassisGrpcPort}`;
  const bareUrl = `http://127.0.0.1:${barePort}`;
  const chassisUrl = `http://127.0.0.1:${chassisHttpPort}`;

  // Same answers everywhere, so the comparison is like for like.
  const checkClient = (addr: string) => createClient(CatalogService, addr);
  const sizes: Record<string, number> = { grpcResponseBytes: Buffer.from(responseB64, "base64").length, bffJsonBytes: Buffer.byteLength(bffBody) };
  for (const [name, addr] of [
    ["grpc-echo", echoAddr],
    ["chassis-fixed", chassisAddr],
  ] as const) {
    const c = checkClient(addr);
    const got = Buffer.from(toBinary(GetProductResponseSchema, await c.getProduct({ id }))).toString("base64");
    c.close();
    if (got !== responseB64) throw new Error(`${name} does not answer the catalog's GetProductResponse`);
  }
  for (const [name, base] of [
    ["hono-fanout", fanoutUrl],
    ["hono-bare", bareUrl],
    ["chassis-fixed", chassisUrl],
  ] as const) {
    const text = await (await fetch(productUrl(base))).text();
    if (text !== bffBody) throw new Error(`${name} does not answer the BFF's body (${Buffer.byteLength(text)} vs ${sizes.bffJsonBytes} bytes)`);
  }
  await Bun.sleep(config.idleS * 1000);
  rss.push(
    { process: "grpc-echo (bare grpc-js)", pid: echo.proc.pid, idleMiB: rssMiB(echo.proc.pid), note: "baseline" },
    { process: "hono-bare (Bun.serve)", pid: bare.proc.pid, idleMiB: rssMiB(bare.proc.pid), note: "baseline" },
    { process: "hono-fanout", pid: fanout.proc.pid, idleMiB: rssMiB(fanout.proc.pid), note: "fan-out baseline: Hono + 2 bare grpc-js calls" },
    { process: "chassis-fixed", pid: chassis.proc.pid, idleMiB: rssMiB(chassis.proc.pid), note: "platform chassis, no DB/Redis" },
  );

  // 3. Load.
  const redis = pidsNamed("redis-server");
  const scenarios: Scenario[] = [];
  const plan: {
    key: string;
    label: string;
    kind: "grpc" | "http";
    role: Scenario["role"];
    run: () => Promise<{ result: LoadResult; cpu: Record<string, number> }>;
  }[] = [
    {
      key: "grpc_bare",
      label: "gRPC  bare grpc-js, fixed GetProductResponse",
      kind: "grpc",
      role: "baseline",
      run: () => runLoader("grpc-load bare", grpcLoadCmd(echoAddr, id), { server: [echo.proc.pid], redis }),
    },
    {
      key: "grpc_chassis",
      label: "gRPC  chassis, fixed response (diagnostic)",
      kind: "grpc",
      role: "diagnostic",
      run: () => runLoader("grpc-load chassis", grpcLoadCmd(chassisAddr, id), { server: [chassis.proc.pid], redis }),
    },
    {
      key: "grpc_catalog",
      label: "gRPC  catalog GetProduct (cache hit)",
      kind: "grpc",
      role: "measured",
      run: () => runLoader("grpc-load catalog", grpcLoadCmd(catalogAddr, id), { server: [catalogPid], redis }),
    },
    {
      key: "http_bare",
      label: "HTTP  bare Hono, fixed JSON",
      kind: "http",
      role: "baseline",
      run: () => httpLoad("http-load bare", productUrl(bareUrl), { server: [bare.proc.pid], redis }),
    },
    {
      key: "http_chassis",
      label: "HTTP  chassis app, fixed JSON (diagnostic)",
      kind: "http",
      role: "diagnostic",
      run: () => httpLoad("http-load chassis", productUrl(chassisUrl), { server: [chassis.proc.pid], redis }),
    },
    {
      key: "http_fanout",
      label: "HTTP  bare fan-out: Hono + 2 grpc-js echo calls",
      kind: "http",
      role: "diagnostic",
      run: () => httpLoad("http-load fan-out", productUrl(fanoutUrl), { server: [fanout.proc.pid, echo.proc.pid], redis }),
    },
    {
      key: "http_bff",
      label: "HTTP  BFF product page GET /api/products/:id",
      kind: "http",
      role: "measured",
      run: () =>
        httpLoad("http-load bff", productUrl(bffUrl), {
          server: [bffPid, catalogPid, platform!.pids.inventory!],
          bff: [bffPid],
          catalog: [catalogPid],
          redis,
        }),
    },
  ];
  for (const s of plan) {
    if (interrupted) break;
    say(`${s.label.replace(/\s+/g, " ")}: ${config.warmupS} s warm-up + ${config.durationS} s, ${config.concurrency} in flight…`);
    const { result, cpu } = await s.run();
    scenarios.push({ key: s.key, label: s.label, kind: s.kind, role: s.role, result, cpu });
    say(
      `  ${fmtNum(result.rps)} calls/s, p50 ${result.p50Ms} ms, p99 ${result.p99Ms} ms${result.errors ? `, ${result.errors} errors (${result.firstError})` : ""}`,
    );
  }
  for (const r of rss) r.afterLoadMiB = rssMiB(r.pid);

  // How stale the (warm) product page gets, and what it asks upstream.
  let freshness: Freshness | undefined;
  if (!interrupted) {
    say("product page freshness: 10 price and 10 stock changes, each until the page shows it…");
    freshness = await productPageFreshness(platform, id, 10);
    say(
      `  price shown after ${median(freshness.priceMs)} ms (median; max ${Math.max(...freshness.priceMs)}), stock after ${median(freshness.stockMs)} ms (max ${Math.max(...freshness.stockMs)})`,
    );
  }

  // 4. Orders end to end: PlaceOrder runs the saga across identity, catalog, inventory and
  // payments; first as fast as 16 buyers can go, then at a fixed rate below that maximum.
  const orderRuns: { label: string; result: LoadResult; cpu: Record<string, number>; cost?: CostPerUnit }[] = [];
  const rssUnderLoad: { process: string; pid: number; MiB?: number }[] = [];
  let fixedRate = 0;
  if (!interrupted) {
    const grpcAddr = (name: string) => `127.0.0.1:${platform!.ports[name]?.grpc}`;
    const identity = createClient(IdentityService, grpcAddr("identity"));
    const inventory = createClient(InventoryService, grpcAddr("inventory"));
    const login = await identity.login({ email: "admin@bazaar.local", password: "bazaar-admin" });
    const admin = { metadata: { authorization: `Bearer ${login.tokens!.accessToken}` } };
    const orderProducts = page.products.map((p) => p.id);
    // Plenty of stock, so every order can be confirmed.
    for (const productId of orderProducts) await inventory.adjustStock({ productId, delta: 100_000, reason: "bench" }, admin);
    identity.close();
    inventory.close();
    const servicePids = Object.entries(platform.pids).filter(([name]) => name !== "bff");
    const ordersCmd = (mode: string[]) => [
      "bun",
      "scripts/bench/orders-load.ts",
      "--identity",
      grpcAddr("identity"),
      "--orders",
      grpcAddr("orders"),
      "--payments",
      grpcAddr("payments"),
      "--products",
      orderProducts.join(","),
      "--warmup",
      String(config.warmupS),
      "--duration",
      String(config.durationS),
      ...mode,
    ];
    // What one order costs, read around each run's measured window (see scripts/bench/cost.ts).
    const probe = costProbe({
      processes: Object.fromEntries(
        Object.entries(platform.pids).map(([name, pid]) => {
          const ports = platform!.ports[name];
          return [name, { pid, metricsUrl: `http://127.0.0.1:${ports?.metrics ?? ports?.http}/metrics` }];
        }),
      ),
      databases: platform.databases,
      postgresUrl: testEnv.POSTGRES_URL,
    });
    try {
      say(`orders: as many as ${config.ordersConcurrency} buyers can place, ${config.warmupS} s warm-up + ${config.durationS} s…`);
      const maxWindow = costWindow(probe);
      const max = await runLoader(
        "orders-load max",
        ordersCmd(["--mode", "closed", "--concurrency", String(config.ordersConcurrency)]),
        { server: servicePids.map(([, pid]) => pid), redis },
        maxWindow.onPhase,
      );
      orderRuns.push({ label: `max: ${config.ordersConcurrency} buyers in a closed loop`, ...max, cost: await maxWindow.cost() });
      say(`  ${fmtNum(max.result.rps, 1)} orders confirmed/s, p50 ${max.result.p50Ms} ms, p99 ${max.result.p99Ms} ms`);
      fixedRate = Math.max(1, Math.floor(max.result.rps * config.ordersFixedShare));
      say(`orders: a fixed ${fixedRate}/s (${Math.round(config.ordersFixedShare * 100)}% of the maximum)…`);
      const fixedWindow = costWindow(probe);
      const fixed = await runLoader(
        "orders-load fixed",
        ordersCmd(["--mode", "open", "--rate", String(fixedRate)]),
        { server: servicePids.map(([, pid]) => pid), redis },
        (phase) => {
          fixedWindow.onPhase(phase);
          if (phase !== "measure") return;
          setTimeout(() => {
            for (const [name, pid] of Object.entries(platform!.pids)) rssUnderLoad.push({ process: name, pid, MiB: rssMiB(pid) });
          }, config.durationS * 500);
        },
      );
      orderRuns.push({ label: `fixed rate: ${fixedRate}/s, open loop`, ...fixed, cost: await fixedWindow.cost() });
      say(`  ${fmtNum(fixed.result.rps, 1)} orders confirmed/s, p50 ${fixed.result.p50Ms} ms, p99 ${fixed.result.p99Ms} ms`);
    } finally {
      await probe.close();
    }
  }

  // 5. Clean up (the total duration includes it).
  await cleanup();
  const totalS = Math.round((performance.now() - benchStarted) / 100) / 10;

  const wall = cold.map((c) => c.wallMs);
  const printed = cold.map((c) => c.printedMs);
  const baselineOf = (kind: "grpc" | "http") => scenarios.find((s) => s.kind === kind && s.role === "baseline");
  const ratio = (s: Scenario) => {
    const base = baselineOf(s.kind);
    if (!base || s === base || !base.result.rps) return undefined;
    return {
      throughput: round3(s.result.rps / base.result.rps),
      p50: round3(s.result.p50Ms / base.result.p50Ms),
      p99: round3(s.result.p99Ms / base.result.p99Ms),
    };
  };

  const noisiest = Math.max(0, ...scenarios.map((s) => s.cpu.other ?? 0));
  const perCall = (cores: number, rps: number) => (rps > 0 ? Math.round((cores / rps) * 1e6) : 0);
  const cpuPerCall = (s: Scenario) => (s.cpu.server !== undefined ? perCall(s.cpu.server, s.result.rps) : undefined);

  output = [
    "",
    `Bazaar benchmark — ${new Date().toISOString()} — ${cpus().length} × ${cpus()[0]?.model ?? "CPU"}, Bun ${Bun.version}`,
    "",
    `1. Cold start: \`bun scripts/dev.ts\` spawn → "all healthy in" (fresh DEV_INSTANCE: create DB, migrate, seed; DEV_PORT_OFFSET=${offset})`,
    table(
      ["run", "instance", "spawn→healthy ms", "runner's own ms", "stop (SIGINT→exit) ms"],
      cold.map((c) => [String(c.run), c.instance, fmtNum(c.wallMs), fmtNum(c.printedMs), c.stopMs === undefined ? "(kept for load)" : fmtNum(c.stopMs)]),
      ["r", "l", "r", "r", "r"],
    ),
    `  min ${fmtNum(Math.min(...wall))} ms, median ${fmtNum(median(wall))} ms (runner's own: min ${fmtNum(Math.min(...printed))}, median ${fmtNum(median(printed))} ms)`,
    "",
    `2. Memory, idle ${config.idleS} s after healthy (RSS, PSS, private) / RSS after the load below`,
    table(
      ["process", "pid", "idle RSS MiB", "idle PSS MiB", "idle private MiB", "after load RSS MiB", "what"],
      rss.map((r) => [r.process, String(r.pid), fmtNum(r.idleMiB, 1), fmtNum(r.idlePssMiB, 1), fmtNum(r.idlePrivateMiB, 1), fmtNum(r.afterLoadMiB, 1), r.note]),
      ["l", "r", "r", "r", "r", "r", "l"],
    ),
    `  the idle platform (${platformMemory.processes} Bazaar processes, the runner included): RSS ${fmtNum(platformMemory.rssMiB, 1)} MiB, PSS ${fmtNum(platformMemory.pssMiB, 1)} MiB, private ${fmtNum(platformMemory.privateMiB, 1)} MiB`,
    "   RSS counts a shared page in every process that maps it (the bun executable's ~40 MB each); PSS splits it among them, so PSS sums to what the platform occupies; private is what no other process shares.",
    "",
    `3. Throughput: ${config.concurrency} in flight, ${config.warmupS} s warm-up + ${config.durationS} s measured, load generator in its own process`,
    `   gRPC load: grpc-js through the platform's createClient (one channel); HTTP load: ${httpTool}${wrkPath ? ` (-t1 -c${config.concurrency})` : ""}`,
    `   one product id (${id}), GetProductResponse ${sizes.grpcResponseBytes} B, JSON body ${sizes.bffJsonBytes} B; every server answers the same bytes`,
    table(
      [
        "scenario",
        "calls/s",
        "p50 ms",
        "p99 ms",
        "×thr vs base",
        "×p50 vs base",
        "errors",
        "server cores",
        "server CPU µs/call",
        "loader cores",
        "redis cores",
        "other cores",
        "machine busy",
      ],
      scenarios.map((s) => {
        const r = ratio(s);
        return [
          s.label,
          fmtNum(s.result.rps),
          s.result.p50Ms.toFixed(3),
          s.result.p99Ms.toFixed(3),
          r ? r.throughput.toFixed(2) : "baseline",
          r ? r.p50.toFixed(2) : "",
          String(s.result.errors),
          s.cpu.server?.toFixed(2) ?? "—",
          cpuPerCall(s)?.toFixed(0) ?? "—",
          s.cpu.loader?.toFixed(2) ?? "—",
          s.cpu.redis?.toFixed(2) ?? "—",
          s.cpu.other?.toFixed(2) ?? "—",
          s.cpu.machineBusyPct !== undefined ? `${s.cpu.machineBusyPct.toFixed(0)}%` : "—",
        ];
      }),
      ["l", "r", "r", "r", "r", "r", "r", "r", "r", "r", "r", "r", "r"],
    ),
    ...(() => {
      const bffRow = scenarios.find((x) => x.key === "http_bff");
      const fan = scenarios.find((x) => x.key === "http_fanout");
      return bffRow && fan?.result.rps
        ? [
            `   product page vs the bare fan-out: ${(bffRow.result.rps / fan.result.rps).toFixed(2)}× the requests/s, p99 ${bffRow.result.p99Ms.toFixed(1)} ms vs ${fan.result.p99Ms.toFixed(1)} ms`,
          ]
        : [];
    })(),
    ...(freshness
      ? [
          `   product page freshness (a change sent → the page shows it; 10 each): price median ${median(freshness.priceMs)} ms, max ${Math.max(...freshness.priceMs)} ms; stock median ${median(freshness.stockMs)} ms, max ${Math.max(...freshness.stockMs)} ms`,
          `   product page upstream calls per warm page (anonymous): ${
            Object.entries(freshness.upstreamCallsPerPage)
              .map(([m, n]) => `${m} ${n}`)
              .join(", ") || "none"
          }`,
        ]
      : []),
    "   server cores: CPU seconds per second of the server process(es) over the window (BFF row: bff + catalog + inventory);",
    "   server CPU µs/call: server cores ÷ calls/s — the cost per call even when the load generator, not the server, is the limit;",
    ...scenarios
      .filter((s) => s.cpu.bff !== undefined && s.cpu.catalog !== undefined)
      .map(
        (s) =>
          `   ${s.label.replace(/\s+/g, " ")}: bff ${s.cpu.bff!.toFixed(2)} cores (${perCall(s.cpu.bff!, s.result.rps)} µs/call), catalog ${s.cpu.catalog!.toFixed(2)} cores (${perCall(s.cpu.catalog!, s.result.rps)} µs/call);`,
      ),
    `   machine busy: share of all ${cpus().length} cores; other cores: busy cores not used by server, load generator or Redis (other processes, kernel).`,
    ...(noisiest > 0.25
      ? [`   ⚠ up to ${noisiest.toFixed(2)} cores went to other processes during a measured window: the numbers are noisy; rerun on a quiet machine.`]
      : []),
    "",
    "4. Orders end to end: CreatePaymentMethod, then PlaceOrder → saga (reserve stock, charge, commit) → CONFIRMED; one line of one unit, test card that pays",
    table(
      ["run", "orders confirmed/s", "p50 ms", "p99 ms", "not confirmed", "services' cores"],
      orderRuns.map((r) => [
        r.label,
        fmtNum(r.result.rps, 1),
        r.result.p50Ms.toFixed(1),
        r.result.p99Ms.toFixed(1),
        String(r.result.errors),
        r.cpu.server?.toFixed(2) ?? "—",
      ]),
      ["l", "r", "r", "r", "r", "r"],
    ),
    "   fixed-rate latency is measured from each call's scheduled start, so queueing counts; services' cores: every gRPC service process together.",
    "",
    "   What one order cost, in CPU time and counts (these depend far less than throughput on how loaded the machine was)",
    ...costTable(orderRuns, Object.keys(platform.pids)),
    "",
    `   RSS (VmRSS) of every process halfway through the fixed-rate run`,
    table(
      ["process", "pid", "MiB"],
      rssUnderLoad.map((r) => [r.process, String(r.pid), fmtNum(r.MiB, 1)]),
      ["l", "r", "r"],
    ),
    "",
    `Total: ${totalS} s (including cleanup: dev runners stopped, ${config.coldRuns} instance(s) dropped, Redis keys removed).`,
    "",
  ].join("\n");

  Object.assign(report, {
    coldStart: { runs: cold, minMs: Math.min(...wall), medianMs: median(wall), runnerMinMs: Math.min(...printed), runnerMedianMs: median(printed), offset },
    rss,
    idlePlatformMemory: platformMemory,
    load: { productId: id, ...sizes, scenarios: scenarios.map((s) => ({ ...s, serverCpuUsPerCall: cpuPerCall(s) ?? null, vsBaseline: ratio(s) ?? null })) },
    productPage: freshness ?? null,
    orders: { runs: orderRuns, fixedRatePerS: fixedRate, rssUnderLoad },
    totalDurationS: totalS,
  });
  mkdirSync(`${repoRoot}/test-artifacts`, { recursive: true });
  writeFileSync(`${repoRoot}/test-artifacts/bench.json`, `${JSON.stringify(report, null, 2)}\n`);
  process.stdout.write(output);
  say(`wrote test-artifacts/bench.json`);
} catch (err) {
  exitCode = 1;
  say(`FAILED: ${(err as Error).message}`);
} finally {
  await cleanup();
  clearTimeout(watchdog);
}
process.exit(interrupted ? 130 : exitCode);
