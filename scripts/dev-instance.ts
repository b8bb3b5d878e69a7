/**
 * An isolated copy of the dev runner (`bun scripts/dev.ts`), beside any platform already running
 * on this machine: every port is shifted by a DEV_PORT_OFFSET whose ports are all free, and
 * DEV_INSTANCE gives it its own databases and Redis key prefix. The end-to-end tests and
 * `bun run bench` start one with {@link startDevInstance} and end with `cleanup()`, which stops
 * it, waits for (or kills) every process of the instance, drops its databases and deletes its
 * Redis keys.
 */
import { readdirSync, readFileSync } from "node:fs";
import { dropDatabase } from "@bazaar/platform/db";
import { withDatabase } from "@bazaar/platform/database-url";
import { deleteVhost } from "@bazaar/platform/messaging/vhost";
import { devVhostName } from "./dev-env.ts";
import { type ChildProcess, startProcess } from "@bazaar/platform/processes";
import { serviceCatalog, type ServiceEntry, serviceEntry } from "@bazaar/platform/service-catalog";
import { clearRedisPrefix, ephemeralPorts, portIsFree, repoRoot, testEnv, uniqueName } from "@bazaar/testkit/fixtures";

const entries = serviceCatalog as readonly ServiceEntry[];

/** The line `scripts/dev.ts` prints once every process is healthy, with its own start time. */
const READY = /^dev\s+│ all healthy in (\d+) ms$/;

// ───────────────────────────── ports ─────────────────────────────

/** Ports by process name: { catalog: { grpc, http }, bff: { http, metrics } }. */
export type InstancePorts = Record<string, { grpc?: number; http: number; metrics?: number }>;

/** Every port of the service catalog shifted by a DEV_PORT_OFFSET, by process name. */
export function portsAt(offset: number): InstancePorts {
  return Object.fromEntries(
    entries.map((e) => [
      e.name,
      {
        ...(e.grpcPort !== undefined ? { grpc: e.grpcPort + offset } : {}),
        http: e.httpPort + offset,
        ...(e.metricsPort !== undefined ? { metrics: e.metricsPort + offset } : {}),
      },
    ]),
  );
}

function portList(offset: number): number[] {
  return Object.values(portsAt(offset)).flatMap((p) => [p.grpc, p.http, p.metrics].filter((port) => port !== undefined));
}

/** True when something accepts TCP connections on 127.0.0.1:port. */
export async function isListening(port: number, timeoutMs = 1_000): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    const done = (value: boolean) => {
      clearTimeout(timer);
      resolve(value);
    };
    Bun.connect({
      hostname: "127.0.0.1",
      port,
      socket: {
        open(socket) {
          socket.end();
          done(true);
        },
        data() {},
        connectError() {
          done(false);
        },
        error() {
          done(false);
        },
      },
    }).catch(() => done(false));
  });
}

/**
 * A DEV_PORT_OFFSET (the dev runner accepts 0–15000) for which every shifted port is free right
 * now and outside the kernel's ephemeral range, so no outgoing connection (the services' own
 * Postgres and Redis connections) can take one between this check and the bind. Never 0: the
 * default ports belong to the developer's own `bun run dev`.
 */
export function pickPortOffset(min = 1_000, max = 15_000, attempts = 200): number {
  const [lo, hi] = ephemeralPorts();
  const usable = (offset: number) => portList(offset).every((p) => p <= 65_535 && (p < lo || p > hi));
  const candidates: number[] = [];
  for (let offset = min; offset <= max; offset++) if (usable(offset)) candidates.push(offset);
  for (let i = 0; i < attempts && candidates.length; i++) {
    const offset = candidates[Math.floor(Math.random() * candidates.length)]!;
    if (portList(offset).every(portIsFree)) return offset;
  }
  throw new Error(`no DEV_PORT_OFFSET in ${min}–${max} keeps ports ${portList(0).join(", ")} free and outside ${lo}–${hi}`);
}

/** Waits until every port of `offset` is free again (e.g. after the previous instance on it stopped). */
async function waitForPortsFree(offset: number, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!portList(offset).every(portIsFree)) {
    if (Date.now() > until) throw new Error(`ports ${portList(offset).join(", ")} still busy after ${timeoutMs} ms`);
    await Bun.sleep(100);
  }
}

// ───────────────────────────── processes (Linux /proc) ─────────────────────────────

/** A file under /proc, or undefined when the process is gone or not ours. */
export function readProc(path: string): string | undefined {
  try {
    return readFileSync(path, "latin1");
  } catch {
    return undefined;
  }
}

/** Every process id visible in /proc. */
export function allPids(): number[] {
  return readdirSync("/proc")
    .filter((d) => /^\d+$/.test(d))
    .map(Number);
}

/**
 * PIDs of the processes of one dev instance: the runner and every child it started inherit
 * DEV_INSTANCE in their environment (only our own processes' environments are readable).
 */
export function processesOfInstance(instance: string): number[] {
  const needle = `\0DEV_INSTANCE=${instance}\0`;
  return allPids().filter((pid) => pid !== process.pid && `\0${readProc(`/proc/${pid}/environ`) ?? ""}`.includes(needle));
}

/**
 * Waits until no process of the instance is left. The runner may exit before a child has
 * finished shutting down (e.g. when stopped while starting); a child left over after
 * `timeoutMs` is killed by its pid, so it cannot recreate what cleanup removes.
 */
async function waitForInstanceGone(instance: string, timeoutMs = 15_000): Promise<number[]> {
  const until = Date.now() + timeoutMs;
  let left = processesOfInstance(instance);
  while (left.length && Date.now() < until) {
    await Bun.sleep(50);
    left = processesOfInstance(instance);
  }
  for (const pid of left) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
  return left;
}

// ───────────────────────────── the instance ─────────────────────────────

/** What `cleanup()` did. */
export interface CleanupReport {
  /** Processes of the instance that outlived the runner and were killed (cleanup then throws). */
  killed: number[];
  /** Redis keys deleted under the instance's prefix. */
  redisKeysDeleted: number;
}

/** A dev runner started by {@link startDevInstance}, from the moment it is spawned. */
export interface DevInstanceHandle {
  /** The storefront and JSON API, e.g. http://127.0.0.1:4000. */
  bffUrl: string;
  /** host:port of the catalog's gRPC server. */
  catalogGrpc: string;
  /** The shifted ports, by process name. */
  ports: InstancePorts;
  /** DEV_PORT_OFFSET and DEV_INSTANCE it runs with. */
  portOffset: number;
  instance: string;
  /** The databases it owns (dropped by cleanup). */
  databases: string[];
  /** Its Redis key prefix (cleared by cleanup). */
  redisPrefix: string;
  /** The dev runner's process. */
  runner: ChildProcess;
  /** Everything the dev runner printed so far (its own lines and every child's, prefixed). */
  output(): string;
  /** Sends SIGINT (Ctrl-C) to the dev runner and resolves with its exit code. */
  stop(): Promise<number | null>;
  /**
   * Stops the runner if still running, waits until every process of the instance is gone,
   * drops its databases and deletes its Redis keys. Idempotent; throws if anything went wrong.
   */
  cleanup(): Promise<CleanupReport>;
}

/** A dev runner that printed "all healthy in". */
export interface DevInstance extends DevInstanceHandle {
  /** The pid of each process the runner started, by process name (for RSS and CPU time). */
  pids: Record<string, number>;
  /** Milliseconds from spawning the runner until it printed "all healthy in". */
  spawnToHealthyMs: number;
  /** What the runner printed: "all healthy in N ms", timed from its own start. */
  reportedHealthyMs: number;
}

/** Options of {@link startDevInstance}. */
export interface DevInstanceOptions {
  /** The DEV_INSTANCE is `<instancePrefix>_<unique>`; default "dev". */
  instancePrefix?: string;
  /** Use this DEV_PORT_OFFSET (waiting until its ports are free) instead of picking a free one. */
  portOffset?: number;
  /** The runner's label in its ChildProcess; default "dev". */
  name?: string;
  /**
   * Variables added to (or overriding) the runner's environment; `undefined` removes one.
   * SHUTDOWN_DRAIN_MS defaults to 200 so stops are quick.
   */
  env?: Record<string, string | undefined>;
  /** How long to wait for "all healthy in"; default 60 s. */
  timeoutMs?: number;
  /** Called with every line the runner prints (e.g. to echo it while debugging). */
  onLine?: (line: string) => void;
  /** Called as soon as the runner is spawned, so a caller that may be interrupted can clean it up. */
  onSpawn?: (handle: DevInstanceHandle) => void;
}

/**
 * Starts `bun scripts/dev.ts` on free ports with a fresh instance and waits until it prints
 * "all healthy in … ms". On failure (early exit, timeout) it cleans up and throws with the
 * runner's output.
 */
export async function startDevInstance(options: DevInstanceOptions = {}): Promise<DevInstance> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  const instance = uniqueName(options.instancePrefix ?? "dev").toLowerCase();
  if (!/^[a-z0-9_]{1,24}$/.test(instance)) throw new Error(`bad DEV_INSTANCE ${instance}`);
  const portOffset = options.portOffset ?? pickPortOffset();
  if (options.portOffset !== undefined) await waitForPortsFree(portOffset);
  const ports = portsAt(portOffset);
  const databases = entries.flatMap((e) => (e.database ? [`${e.database}_${instance}`] : []));
  const redisPrefix = `bazaar_${instance}:`;

  let ready: (reportedMs: number) => void = () => {};
  const readyLine = new Promise<number>((resolve) => {
    ready = resolve;
  });
  let spawnToHealthyMs = 0;
  const spawnedAt = performance.now();
  const runner = startProcess({
    name: options.name ?? "dev",
    cmd: ["bun", "scripts/dev.ts"],
    cwd: repoRoot,
    env: {
      ...process.env,
      // A developer's shell may carry its own values; this platform must not share them.
      DEV_PORT_OFFSET: String(portOffset),
      DEV_INSTANCE: instance,
      POSTGRES_URL: testEnv.POSTGRES_URL,
      REDIS_URL: testEnv.REDIS_URL,
      SHUTDOWN_DRAIN_MS: "200",
      ...options.env,
    },
    onLine: (line) => {
      options.onLine?.(line);
      const m = READY.exec(line);
      if (m && !spawnToHealthyMs) {
        spawnToHealthyMs = Math.round(performance.now() - spawnedAt);
        ready(Number(m[1]));
      }
    },
  });

  let cleaned: Promise<CleanupReport> | undefined;
  const stop = () => runner.stop("SIGINT", 20_000);
  const cleanup = () => {
    cleaned ??= removeInstance({ instance, databases, redisPrefix, stop });
    return cleaned;
  };

  const handle: DevInstanceHandle = {
    bffUrl: `http://127.0.0.1:${serviceEntry("bff").httpPort + portOffset}`,
    catalogGrpc: `127.0.0.1:${(serviceEntry("catalog").grpcPort ?? 0) + portOffset}`,
    ports,
    portOffset,
    instance,
    databases,
    redisPrefix,
    runner,
    output: runner.output,
    stop,
    cleanup,
  };
  options.onSpawn?.(handle);

  const fail = async (why: string): Promise<never> => {
    await cleanup().catch(() => {});
    throw new Error(`bun scripts/dev.ts (DEV_PORT_OFFSET=${portOffset} DEV_INSTANCE=${instance}) ${why}; its output:\n${runner.output()}`);
  };

  let timer: Timer | undefined;
  const outcome = await Promise.race([
    readyLine,
    runner.proc.exited.then((code) => `exited with code ${code}`),
    new Promise<string>((resolve) => {
      timer = setTimeout(() => resolve(`did not print "all healthy in" within ${timeoutMs} ms`), timeoutMs);
    }),
  ]);
  clearTimeout(timer);
  if (typeof outcome === "string") return fail(outcome);

  // Every process answered /healthz, so each is running now.
  const pids = pidsOfInstance(instance);
  if (typeof pids === "string") return fail(`is healthy but no process of the instance runs ${pids}`);
  return Object.assign(handle, { pids, spawnToHealthyMs, reportedHealthyMs: outcome });
}

/** The pid of each catalog process of `instance`, or the entry point no process runs. */
export function pidsOfInstance(instance: string): Record<string, number> | string {
  const running = processesOfInstance(instance).map((pid) => ({ pid, cmdline: (readProc(`/proc/${pid}/cmdline`) ?? "").split("\0") }));
  const pids: Record<string, number> = {};
  for (const e of entries) {
    const found = running.find((p) => p.cmdline.includes(e.entry));
    if (!found) return e.entry;
    pids[e.name] = found.pid;
  }
  return pids;
}

/**
 * Stops the runner and removes everything the instance made: its processes (any that outlive
 * the runner are killed), databases, Redis keys and vhost. Every step runs; the error lists
 * each that failed.
 */
async function removeInstance(what: { instance: string; databases: string[]; redisPrefix: string; stop: () => Promise<unknown> }): Promise<CleanupReport> {
  const { instance, databases, redisPrefix } = what;
  const problems: string[] = [];
  await what.stop().catch((err: Error) => problems.push(`stop: ${err.message}`));
  const killed = await waitForInstanceGone(instance);
  if (killed.length) problems.push(`killed processes that outlived the runner: ${killed.join(", ")}`);
  for (const db of databases) {
    await dropDatabase(withDatabase(testEnv.POSTGRES_URL, db)).catch((err: Error) => problems.push(`drop ${db}: ${err.message}`));
  }
  const redisKeysDeleted = await clearRedisPrefix(redisPrefix).catch((err: Error) => {
    problems.push(`redis ${redisPrefix}: ${err.message}`);
    return 0;
  });
  await deleteVhost(devVhostName(instance)).catch((err: Error) => problems.push(`vhost: ${err.message}`));
  if (problems.length) throw new Error(`dev instance ${instance} cleanup failed: ${problems.join("; ")}`);
  return { killed, redisKeysDeleted };
}
