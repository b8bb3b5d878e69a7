/**
 * Runs the whole platform the way a developer does (`bun run dev`), isolated from any platform
 * already running on this machine: every port is shifted by a random DEV_PORT_OFFSET whose
 * ports are all free, and DEV_INSTANCE gives it its own databases and Redis key prefix.
 * End-to-end and browser tests start one with {@link startDevPlatform} and end with `cleanup()`.
 */
import { readdirSync, readFileSync } from "node:fs";
import { dropDatabase, withDatabase } from "@bazaar/platform/db";
import { type ChildProcess, startProcess } from "@bazaar/platform/processes";
import { serviceCatalog, type ServiceEntry } from "@bazaar/platform/service-catalog";
import { clearRedisPrefix, repoRoot, testEnv, uniqueName } from "@bazaar/platform/testing";

const entries = serviceCatalog as readonly ServiceEntry[];

/** The line `scripts/dev.ts` prints once every process is healthy. */
const READY = /^dev\s+│ all healthy in \d+ ms$/;

/** Every port of the service catalog, before the offset. */
export function catalogPorts(): number[] {
  return entries.flatMap((e) => (e.grpcPort !== undefined ? [e.grpcPort, e.httpPort] : [e.httpPort]));
}

/** True when nothing listens on `port` on any local address (we can bind it ourselves). */
export function portIsFree(port: number): boolean {
  // Services bind 0.0.0.0; binding the wildcard fails if anything holds the port on any address.
  for (const hostname of ["0.0.0.0", "127.0.0.1"]) {
    try {
      const server = Bun.listen({ hostname, port, socket: { data() {} } });
      server.stop(true);
    } catch {
      return false;
    }
  }
  return true;
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
 * PIDs of the processes of one dev instance: the runner and every child it started inherit
 * DEV_INSTANCE in their environment (Linux /proc; only our own processes are readable).
 */
export function processesOfInstance(instance: string): number[] {
  const needle = `DEV_INSTANCE=${instance}\0`;
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${entry}/environ`, "latin1").includes(needle)) pids.push(Number(entry));
    } catch {
      // exited meanwhile, or not ours
    }
  }
  return pids;
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

/**
 * A DEV_PORT_OFFSET (the dev runner accepts 0–10000) for which every shifted port is free right
 * now. Never 0: the default ports belong to the developer's own `bun run dev`.
 */
export function pickPortOffset(min = 1_000, max = 10_000, attempts = 200): number {
  const ports = catalogPorts();
  for (let i = 0; i < attempts; i++) {
    const offset = min + Math.floor(Math.random() * (max - min + 1));
    const shifted = ports.map((p) => p + offset);
    if (shifted.every((p) => p <= 65_535) && shifted.every(portIsFree)) return offset;
  }
  throw new Error(`no DEV_PORT_OFFSET in ${min}–${max} with all of ports ${ports.join(", ")} free after ${attempts} tries`);
}

/** A platform started by {@link startDevPlatform}. */
export interface DevPlatform {
  /** The storefront and JSON API, e.g. http://127.0.0.1:4000. */
  bffUrl: string;
  /** host:port of the catalog's gRPC server. */
  catalogGrpc: string;
  /** The shifted ports, by process name: { catalog: { grpc, http }, bff: { http } }. */
  ports: Record<string, { grpc?: number; http: number }>;
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
  /** Stops the runner if still running, drops its databases and deletes its Redis keys. Idempotent. */
  cleanup(): Promise<void>;
}

/** Options of {@link startDevPlatform}. */
export interface DevPlatformOptions {
  /** Variables added to (or overriding) the runner's environment. */
  env?: Record<string, string>;
  /** How long to wait for "all healthy in"; default 60 s. */
  timeoutMs?: number;
  /** Called with every line the runner prints (e.g. to echo it while debugging). */
  onLine?: (line: string) => void;
}

/**
 * Starts `bun scripts/dev.ts` on free ports with a fresh instance and waits until it prints
 * "all healthy in … ms". On failure (early exit, timeout) it cleans up and throws with the
 * runner's output.
 */
export async function startDevPlatform(options: DevPlatformOptions = {}): Promise<DevPlatform> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  const instance = uniqueName("e2e").toLowerCase();
  if (!/^[a-z0-9_]{1,24}$/.test(instance)) throw new Error(`bad DEV_INSTANCE ${instance}`);
  const portOffset = pickPortOffset();
  const ports: DevPlatform["ports"] = Object.fromEntries(
    entries.map((e) => [e.name, { ...(e.grpcPort !== undefined ? { grpc: e.grpcPort + portOffset } : {}), http: e.httpPort + portOffset }]),
  );
  const databases = entries.flatMap((e) => (e.database ? [`${e.database}_${instance}`] : []));
  const redisPrefix = `bazaar_${instance}:`;

  let ready: () => void = () => {};
  const readyLine = new Promise<void>((resolve) => {
    ready = resolve;
  });
  const runner = startProcess({
    name: "dev",
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
      if (READY.test(line)) ready();
    },
  });

  let cleaned: Promise<void> | undefined;
  const stop = () => runner.stop("SIGINT", 20_000);
  const cleanup = () =>
    (cleaned ??= (async () => {
      const problems: string[] = [];
      await stop().catch((err: Error) => problems.push(`stop: ${err.message}`));
      const killed = await waitForInstanceGone(instance);
      if (killed.length) problems.push(`killed processes that outlived the runner: ${killed.join(", ")}`);
      for (const db of databases) {
        await dropDatabase(withDatabase(testEnv.POSTGRES_URL, db)).catch((err: Error) => problems.push(`drop ${db}: ${err.message}`));
      }
      await clearRedisPrefix(redisPrefix).catch((err: Error) => problems.push(`redis ${redisPrefix}: ${err.message}`));
      if (problems.length) throw new Error(`dev platform cleanup failed: ${problems.join("; ")}`);
    })());

  const bffPort = ports.bff?.http ?? 3000 + portOffset;
  const platform: DevPlatform = {
    bffUrl: `http://127.0.0.1:${bffPort}`,
    catalogGrpc: `127.0.0.1:${ports.catalog?.grpc ?? 50052 + portOffset}`,
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

  let timer: Timer | undefined;
  const outcome = await Promise.race([
    readyLine.then(() => "ready" as const),
    runner.proc.exited.then((code) => `exited with code ${code}` as const),
    new Promise<string>((resolve) => {
      timer = setTimeout(() => resolve(`did not print "all healthy in" within ${timeoutMs} ms`), timeoutMs);
    }),
  ]);
  clearTimeout(timer);
  if (outcome !== "ready") {
    await cleanup().catch(() => {});
    throw new Error(
      `bun scripts/dev.ts (DEV_PORT_OFFSET=${portOffset} DEV_INSTANCE=${instance}) ${outcome}; its output:\n${runner.output()}`,
    );
  }
  return platform;
}
