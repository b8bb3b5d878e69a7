/**
 * What a window of work cost, read from outside the platform so that it stays honest on a
 * loaded machine: CPU time of each platform process and of the servers behind them (from
 * /proc), Postgres's own counts for the platform's databases (pg_stat_database), and the
 * platform's own counters (every process's /metrics): SQL statements sent, RPCs served,
 * messages published and consumed. Take a {@link CostProbe.snapshot} before and after the
 * window and divide {@link costBetween} by the work done (e.g. orders confirmed).
 *
 * Used by `bun run bench` (its orders section) and `bun scripts/order-cost.ts`.
 */
import postgres from "postgres";
import { allPids, readProc } from "../dev-instance.ts";

const clockTicks = Number(Bun.spawnSync(["getconf", "CLK_TCK"]).stdout.toString().trim()) || 100;

/** CPU time (user + system) of a process, in seconds; 0 when it is gone. */
export function cpuSeconds(pid: number): number {
  const stat = readProc(`/proc/${pid}/stat`);
  if (!stat) return 0;
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) / clockTicks;
}

/** Every process whose command name (/proc/<pid>/comm) is `comm`, e.g. redis-server, beam.smp. */
export function pidsNamed(comm: string): number[] {
  return allPids().filter((p) => (readProc(`/proc/${p}/comm`) ?? "").trim() === comm);
}

/** A platform process to watch: its pid and the URL of its /metrics. */
export interface WatchedProcess {
  pid: number;
  metricsUrl: string;
}

/** Sums of the counters read from every process's /metrics. */
export interface CounterSums {
  /** bazaar_db_queries_total, all databases of the process. */
  dbQueries: number;
  /** grpc_server_handled_total, by grpc_service (e.g. bazaar.orders.v1.OrdersService). */
  grpcHandled: Record<string, number>;
  /** grpc_server_handled_total of calls answered OK, by "grpc_service/grpc_method". */
  grpcOk: Record<string, number>;
  messagesPublished: number;
  messagesConsumed: number;
}

/** One reading of everything {@link costBetween} compares. */
export interface CostSnapshot {
  at: number;
  /** The machine's busy and total CPU ticks. */
  machine: { busy: number; total: number };
  /** CPU seconds of each watched process, by name. */
  processCpu: Record<string, number>;
  /** CPU seconds of each backend serving the watched databases, by pid (a pool may open more during the window). */
  backendCpu: Map<number, number>;
  /** CPU seconds of every postgres process on the machine, by pid (the server's shared processes and other clients' backends too). */
  postgresCpu: Map<number, number>;
  rabbitmqCpu: number;
  redisCpu: number;
  /** Sums over the watched databases of pg_stat_database's counters. */
  pgStat: Record<(typeof pgStatColumns)[number], number>;
  /** The counters of each watched process, by name. */
  counters: Record<string, CounterSums>;
}

const pgStatColumns = ["xact_commit", "xact_rollback", "tup_inserted", "tup_updated", "tup_deleted", "tup_fetched", "tup_returned"] as const;

/**
 * Parses Prometheus text: the sum of `metric`'s samples, by the key `keyOf` makes of each
 * sample's labels ("" for all when not given; a sample it answers undefined for is skipped).
 */
export function sumMetric(text: string, metric: string, keyOf: (labels: Record<string, string>) => string | undefined = () => ""): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of text.matchAll(new RegExp(`^${metric}(?:\\{([^}]*)\\})? (\\S+)`, "gm"))) {
    const labels = Object.fromEntries([...(m[1] ?? "").matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1]!, l[2]!]));
    const key = keyOf(labels);
    if (key !== undefined) out[key] = (out[key] ?? 0) + Number(m[2]);
  }
  return out;
}

const total = (r: Record<string, number>) => Object.values(r).reduce((a, b) => a + b, 0);

async function readCounters(url: string): Promise<CounterSums> {
  const text = await (await fetch(url, { signal: AbortSignal.timeout(5_000) })).text();
  return {
    dbQueries: total(sumMetric(text, "bazaar_db_queries_total")),
    grpcHandled: sumMetric(text, "grpc_server_handled_total", (l) => l.grpc_service),
    grpcOk: sumMetric(text, "grpc_server_handled_total", (l) => (l.grpc_code === "OK" ? `${l.grpc_service}/${l.grpc_method}` : undefined)),
    messagesPublished: total(sumMetric(text, "bazaar_messages_published_total")),
    messagesConsumed: total(sumMetric(text, "bazaar_messages_consumed_total")),
  };
}

/** Reads the cost counters of a platform: its processes, and its databases on one Postgres server. */
export interface CostProbe {
  snapshot(): Promise<CostSnapshot>;
  close(): Promise<void>;
}

/**
 * A probe of `processes` (by name) whose databases `databases` live on the Postgres server of
 * `postgresUrl`. It keeps one connection (to the server's `postgres` database, so it is none of
 * the backends it measures).
 */
export function costProbe(options: { processes: Record<string, WatchedProcess>; databases: string[]; postgresUrl: string }): CostProbe {
  const admin = new URL(options.postgresUrl);
  admin.pathname = "/postgres";
  const sql = postgres(admin.toString(), { max: 1, onnotice: () => {} });
  return {
    async snapshot() {
      const [backends, pgStat, counters] = await Promise.all([
        sql<{ pid: number }[]>`select pid from pg_stat_activity where datname = any(${options.databases})`,
        pgStatOf(sql, options.databases),
        Promise.all(Object.entries(options.processes).map(async ([name, p]) => [name, await readCounters(p.metricsUrl)] as const)),
      ]);
      const cpuOf = (pids: number[]) => new Map(pids.map((p) => [p, cpuSeconds(p)]));
      const sum = (pids: number[]) => pids.reduce((a, p) => a + cpuSeconds(p), 0);
      return {
        at: performance.now(),
        machine: machineTicks(),
        processCpu: Object.fromEntries(Object.entries(options.processes).map(([name, p]) => [name, cpuSeconds(p.pid)])),
        backendCpu: cpuOf(backends.map((b) => b.pid)),
        postgresCpu: cpuOf(pidsNamed("postgres")),
        rabbitmqCpu: sum(pidsNamed("beam.smp")),
        redisCpu: sum(pidsNamed("redis-server")),
        pgStat,
        counters: Object.fromEntries(counters),
      };
    },
    close: () => sql.end({ timeout: 5 }),
  };
}

async function pgStatOf(sql: postgres.Sql, databases: string[]): Promise<CostSnapshot["pgStat"]> {
  const [row] = await sql.unsafe(
    `select ${pgStatColumns.map((c) => `coalesce(sum(${c}), 0)::float8 as ${c}`).join(", ")} from pg_stat_database where datname = any($1)`,
    [databases],
  );
  return Object.fromEntries(pgStatColumns.map((c) => [c, Number(row?.[c] ?? 0)])) as CostSnapshot["pgStat"];
}

/**
 * RPCs of `method` ("bazaar.orders.v1.OrdersService/PlaceOrder") answered OK between two
 * snapshots, by every watched process: the work a window did, counted by the server, so that
 * calls straddling the window's edges count as the CPU they used there does.
 */
export function okCallsBetween(a: CostSnapshot, b: CostSnapshot, method: string): number {
  return Object.entries(b.counters).reduce((n, [name, after]) => n + (after.grpcOk[method] ?? 0) - (a.counters[name]?.grpcOk[method] ?? 0), 0);
}

/** What one unit of work (one order) cost between two snapshots. */
export interface CostPerUnit {
  units: number;
  seconds: number;
  /** CPU milliseconds per unit of each watched process, by name. */
  cpuMs: Record<string, number>;
  /** CPU ms per unit of the backends serving the watched databases. */
  postgresBackendsMs: number;
  /** CPU ms per unit of every other postgres process (WAL writer, checkpointer, autovacuum, other clients' backends). */
  postgresOtherMs: number;
  rabbitmqMs: number;
  redisMs: number;
  /** pg_stat_database deltas per unit, summed over the watched databases. */
  pgStat: Record<string, number>;
  /** SQL statements sent per unit (bazaar_db_queries_total), by process and in all. */
  statements: Record<string, number>;
  /** RPCs served per unit, by gRPC service. */
  grpcCalls: Record<string, number>;
  messagesPublished: number;
  messagesConsumed: number;
  /** The machine's busy share over the window, 0–100 (how loaded it was, by anyone). */
  machineBusyPct: number;
}

const round2 = (x: number) => Math.round(x * 100) / 100;

/** The machine's busy and total CPU ticks (/proc/stat). */
export function machineTicks(): { busy: number; total: number } {
  const nums = (readProc("/proc/stat")?.split("\n")[0] ?? "").trim().split(/\s+/).slice(1).map(Number);
  const all = nums.slice(0, 8).reduce((a, b) => a + b, 0);
  return { busy: all - (nums[3] ?? 0) - (nums[4] ?? 0), total: all };
}

/** The cost per unit of work between `a` and `b`, `units` units having been done in between. */
export function costBetween(a: CostSnapshot, b: CostSnapshot, units: number): CostPerUnit {
  const per = (x: number) => (units > 0 ? x / units : 0);
  const ms = (x: number) => round2(per(x) * 1000);
  // A backend that opened during the window counts from 0; one that closed is lost (pools keep theirs).
  const mapDelta = (before: Map<number, number>, after: Map<number, number>, only?: (pid: number) => boolean) =>
    [...after].filter(([pid]) => !only || only(pid)).reduce((s, [pid, cpu]) => s + cpu - (before.get(pid) ?? 0), 0);
  const backendsMs = ms(mapDelta(a.backendCpu, b.backendCpu));
  const statements: Record<string, number> = {};
  const grpcCalls: Record<string, number> = {};
  let published = 0;
  let consumed = 0;
  for (const [name, after] of Object.entries(b.counters)) {
    const before = a.counters[name];
    if (!before) continue;
    statements[name] = round2(per(after.dbQueries - before.dbQueries));
    for (const [svc, n] of Object.entries(after.grpcHandled)) {
      const d = per(n - (before.grpcHandled[svc] ?? 0));
      if (d > 0) grpcCalls[svc.replace(/^bazaar\.(\w+)\.v1\..*$/, "$1")] = round2(d);
    }
    published += after.messagesPublished - before.messagesPublished;
    consumed += after.messagesConsumed - before.messagesConsumed;
  }
  statements.all = round2(Object.values(statements).reduce((x, y) => x + y, 0));
  const ticks = b.machine.total - a.machine.total;
  const machineBusyPct = ticks > 0 ? Math.round(((b.machine.busy - a.machine.busy) / ticks) * 1000) / 10 : 0;
  return {
    units,
    seconds: round2((b.at - a.at) / 1000),
    cpuMs: Object.fromEntries(Object.entries(b.processCpu).map(([name, cpu]) => [name, ms(cpu - (a.processCpu[name] ?? 0))])),
    postgresBackendsMs: backendsMs,
    postgresOtherMs: ms(mapDelta(a.postgresCpu, b.postgresCpu, (pid) => !b.backendCpu.has(pid))),
    rabbitmqMs: ms(b.rabbitmqCpu - a.rabbitmqCpu),
    redisMs: ms(b.redisCpu - a.redisCpu),
    pgStat: Object.fromEntries(Object.entries(b.pgStat).map(([k, v]) => [k, round2(per(v - (a.pgStat[k as keyof CostSnapshot["pgStat"]] ?? 0)))])),
    statements,
    grpcCalls,
    messagesPublished: round2(per(published)),
    messagesConsumed: round2(per(consumed)),
    machineBusyPct,
  };
}
