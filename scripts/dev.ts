/**
 * `bun run dev`: runs the whole platform on this machine.
 *
 * 1. checks Postgres, Redis and RabbitMQ and says exactly what is missing;
 * 2. starts every process of the service catalog with prefixed logs (each service creates
 *    and migrates its own database at start, and the catalog seeds demo data when empty);
 * 3. waits until every process reports healthy and prints a table of addresses;
 * 4. keeps them running: a process that exits unexpectedly is restarted with backoff and
 *    awaited healthy again while the others serve on; one that crash-loops (5 crashes in
 *    2 minutes) is given up on and the runner stops everything with exit code 3;
 * 5. on Ctrl-C (or SIGTERM) stops everything gracefully, restarting nothing, and exits 0.
 *
 * DEV_PORT_OFFSET and DEV_INSTANCE run a second, isolated platform beside the first (the
 * end-to-end tests do). `--replicas catalog=3,orders=2` (or DEV_REPLICAS) runs services as
 * several instances, each caller given all of them (see dev-replicas.ts).
 */
import { withDatabase } from "@bazaar/platform/database-url";
import { startProcess } from "@bazaar/platform/processes";
import { peerEnv, serviceCatalog, type ServiceEntry, serviceEntry, type ServiceName } from "@bazaar/platform/service-catalog";
import { ensureVhost } from "@bazaar/platform/messaging/vhost";
import { Supervisor } from "@bazaar/platform/supervisor";
import { devEnv, devVhostName } from "./dev-env.ts";
import { checkInfrastructure } from "./infra-check.ts";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { type Instance, instances, parseReplicas, peerAddresses, replicasArg } from "./dev-replicas.ts";
import { fileSdTargets, monitoringPorts, monitoringProcesses, resolveBinary, writeFileSdTargets } from "./dev-monitoring.ts";

const root = new URL("..", import.meta.url).pathname;
const started = performance.now();
const colors = [36, 35, 33, 32, 34, 91, 96, 95, 93];
const useColor = process.stdout.isTTY ?? false;
const paint = (code: number, text: string) => (useColor ? `\x1b[${code}m${text}\x1b[0m` : text);
const port = (p: number) => p + devEnv.DEV_PORT_OFFSET;

/** Every process to start: `--replicas` when given, else DEV_REPLICAS. */
const all: Instance[] = (() => {
  try {
    const arg = replicasArg(process.argv.slice(2));
    return instances(serviceCatalog as readonly ServiceEntry[], arg === undefined ? devEnv.DEV_REPLICAS : parseReplicas(arg), port);
  } catch (err) {
    process.stderr.write(`invalid --replicas: ${(err as Error).message}\n`);
    process.exit(1);
  }
})();
const peerAddressLists = peerAddresses(all);
const width = Math.max(...all.map((s) => s.name.length));
const databaseName = (name: string) => (devEnv.DEV_INSTANCE ? `${name}_${devEnv.DEV_INSTANCE}` : name);

function say(text: string): void {
  process.stdout.write(`${paint(1, "dev")}${" ".repeat(Math.max(1, width - 2))}│ ${text}\n`);
}

/** A JSON log line as `time level msg key=value …`; other lines as they are. */
function pretty(line: string): string {
  if (!line.startsWith("{")) return line;
  try {
    const { time, level, msg, service: _service, ...rest } = JSON.parse(line) as Record<string, unknown>;
    const fields = Object.entries(rest)
      .filter(([k]) => k !== "span_id")
      .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`)
      .join(" ");
    const lvl = String(level).padEnd(5);
    const shownLevel = level === "error" ? paint(31, lvl) : level === "warn" ? paint(33, lvl) : paint(2, lvl);
    return `${String(time).slice(11, 19)} ${shownLevel} ${msg}${fields ? ` ${paint(2, fields)}` : ""}`;
  } catch {
    return line;
  }
}

/** The environment of one process: its ports, its database, and every peer's address. */
function processEnv(instance: Instance): Record<string, string | undefined> {
  const { entry } = instance;
  const env: Record<string, string | undefined> = {
    ...process.env,
    LOG_LEVEL: devEnv.LOG_LEVEL,
    HTTP_PORT: String(instance.httpPort),
    REDIS_URL: devEnv.REDIS_URL,
    REDIS_KEY_PREFIX: devEnv.DEV_INSTANCE ? `bazaar_${devEnv.DEV_INSTANCE}:` : "bazaar:",
    AMQP_URL: amqpUrl,
    // Every replica alike, as a Deployment's pods: seeding is safe to race (each seeder takes a
    // lock and adds only what is missing), and inventory's demo stock is decided by whichever
    // replica adds a product's row, so a replica without it would stock that product at 0.
    SEED_DEMO_DATA: "true",
    OTEL_EXPORTER_OTLP_ENDPOINT: otlpEndpoint,
  };
  if (instance.grpcPort !== undefined) env.GRPC_PORT = String(instance.grpcPort);
  if (instance.metricsPort !== undefined) env.METRICS_PORT = String(instance.metricsPort);
  if (entry.database) env.DATABASE_URL = withDatabase(devEnv.POSTGRES_URL, databaseName(entry.database));
  Object.assign(
    env,
    peerEnv((name) => {
      const peer = serviceEntry(name as ServiceName);
      return { grpc: peer.grpcPort === undefined ? undefined : port(peer.grpcPort), http: port(peer.httpPort) };
    }),
    // Every instance of each gRPC service; the chassis's client balances across them.
    peerAddressLists,
  );
  return env;
}

const checks = await checkInfrastructure({ postgres: devEnv.POSTGRES_URL, redis: devEnv.REDIS_URL, amqp: devEnv.AMQP_URL });
const missing = checks.filter((c) => !c.ok);
for (const c of checks) say(`${c.ok ? paint(32, "ok  ") : paint(31, "FAIL")} ${c.name.padEnd(8)} ${c.url}${c.problem ? `: ${c.problem}` : ""}`);
if (missing.length) {
  say(`cannot start: ${missing.map((c) => c.name).join(", ")} ${missing.length === 1 ? "is" : "are"} not reachable (see above).`);
  process.exit(1);
}

// An isolated instance gets a vhost of its own, so its queues never meet the default platform's.
const amqpUrl = devEnv.DEV_INSTANCE ? await ensureVhost(devEnv.AMQP_URL, devVhostName(devEnv.DEV_INSTANCE)) : devEnv.AMQP_URL;

/**
 * How the runner ends, by its exit code: 0 stopped on request (Ctrl-C or SIGTERM) with every
 * process stopped cleanly; 1 could not start (or a process did not stop cleanly when asked);
 * 3 gave up on a crash-looping process and stopped the rest.
 */
const exitCodes = { stopped: 0, failed: 1, gaveUp: 3 } as const;

let stopping: Promise<void> | undefined;
let exitCode: number = exitCodes.stopped;

/**
 * Stops every process once; every caller waits for that one shutdown, the first caller's code
 * wins, except that a stop on request where a process did not exit 0 ends with code 1.
 */
async function stopAll(code: number): Promise<never> {
  if (!stopping) {
    exitCode = code;
    stopping = (async () => {
      say("stopping every process…");
      const [stopped] = await Promise.all([supervisor.stop(), ...monitoring.map((m) => m.child.stop("SIGTERM", 10_000).catch(() => null))]);
      say(`stopped (exit codes: ${stopped.map((s) => `${s.name}=${s.code === undefined ? "not running" : s.code}`).join(", ")})`);
      const unclean = stopped.filter((s) => s.code !== undefined && s.code !== 0);
      if (exitCode === exitCodes.stopped && unclean.length) {
        say(paint(31, `${unclean.map((s) => s.name).join(", ")} did not stop cleanly (see their last lines above).`));
        exitCode = exitCodes.failed;
      }
    })();
  }
  await stopping;
  process.exit(exitCode);
}

const entries = serviceCatalog as readonly ServiceEntry[];

// ───── optional monitoring: started before the platform (Jaeger must be there for the first span) ─────
// Not supervised: one that is missing or dies is reported, and the platform runs on without it.
// An isolated instance (DEV_INSTANCE) skips them: the target files and ports are the default platform's.
const monitoring: { name: string; url: string; child: ReturnType<typeof startProcess> }[] = [];
let otlpEndpoint = devEnv.OTEL_EXPORTER_OTLP_ENDPOINT;
if (devEnv.DEV_MONITORING && !devEnv.DEV_INSTANCE) {
  writeFileSdTargets(
    join(root, "deploy/prometheus/targets"),
    fileSdTargets(
      all.map((i) => ({ entry: i.entry, name: i.name, metricsPort: i.metricsPort ?? i.httpPort })),
      port,
    ),
  );
  const table = monitoringProcesses({
    root,
    dataDir: join(root, ".dev"),
    postgresUrl: devEnv.POSTGRES_URL,
    redisUrl: devEnv.REDIS_URL,
    port,
  });
  for (const m of table) {
    const binary = resolveBinary(m.binary, existsSync);
    if (!binary) {
      say(paint(2, `${m.name} not started: ${m.binary} is not installed; to get it: ${m.install}`));
      continue;
    }
    const prefix = `${paint(2, m.name.slice(0, width).padEnd(width))} │ `;
    const child = startProcess({
      name: m.name,
      cmd: [binary, ...m.args],
      cwd: root,
      env: { ...process.env, ...m.env },
      onLine: (line) => {
        if (devEnv.LOG_LEVEL === "debug" || /level=(error|warn)|"level":"(error|warn)/i.test(line)) process.stdout.write(`${prefix}${line}\n`);
      },
    });
    // `finished`, not `exited`: its last lines (the reason) may still be in the pipe at the exit.
    void child.finished.then(() => {
      const code = child.proc.exitCode;
      if (!stopping)
        say(
          paint(
            33,
            `${m.name} exited with code ${code} (the platform runs on without it); its last lines:\n${child.output().split("\n").slice(-5).join("\n")}`,
          ),
        );
    });
    monitoring.push({ name: m.name, url: m.url, child });
    if (m.name === "jaeger" && !otlpEndpoint) otlpEndpoint = `http://127.0.0.1:${monitoringPorts.jaegerOtlpHttp}`;
  }
  if (!(await answers(`http://127.0.0.1:${monitoringPorts.rabbitmq}/metrics`))) {
    say(
      paint(
        2,
        `RabbitMQ's metrics (:${monitoringPorts.rabbitmq}) do not answer: run \`rabbitmq-plugins enable rabbitmq_prometheus\` (bash scripts/setup.sh does)`,
      ),
    );
  }
}

async function answers(url: string): Promise<boolean> {
  const res = await fetch(url, { signal: AbortSignal.timeout(1_000) }).catch(() => undefined);
  await res?.body?.cancel();
  return res?.ok ?? false;
}

const supervisor = new Supervisor(
  all.map((instance, i) => {
    const prefix = `${paint(colors[i % colors.length] ?? 37, instance.name.padEnd(width))} │ `;
    return {
      name: instance.name,
      healthUrl: `http://127.0.0.1:${instance.httpPort}/healthz`,
      start: () =>
        startProcess({
          name: instance.name,
          cmd: ["bun", instance.entry.entry],
          cwd: root,
          env: processEnv(instance),
          onLine: (line) => process.stdout.write(`${prefix}${pretty(line)}\n`),
        }),
    };
  }),
  {
    healthTimeoutMs: devEnv.DEV_HEALTH_TIMEOUT_MS,
    report: (line, severity, lines = []) => {
      say(severity === "info" ? line : paint(severity === "error" ? 31 : 33, line));
      for (const own of lines) say(`    ${pretty(own)}`);
    },
    // A crash-looping process stops the whole platform rather than leaving it running without
    // that process (compose's `restart: on-failure:N` would keep the rest up, Kubernetes retries
    // for ever). Here nothing can bring the process back short of rerunning `bun run dev` after
    // fixing the cause; the rest running on would answer every request that needs it with an
    // error, burying its last lines (the cause) under their own; and whoever started the runner
    // — a person, a script, startDevInstance in a test — learns of it from the exit code.
    onGiveUp: () => void stopAll(exitCodes.gaveUp),
  },
);

for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, () => void stopAll(exitCodes.stopped));

try {
  await supervisor.start();
} catch (err) {
  if (!stopping) say(paint(31, (err as Error).message.split("\n")[0] ?? "a process did not become healthy"));
  await stopAll(exitCodes.failed);
}

const seconds = ((performance.now() - started) / 1000).toFixed(2);
const rows = all.map((i) => [
  i.name,
  i.grpcPort !== undefined ? `127.0.0.1:${i.grpcPort}` : "—",
  `http://127.0.0.1:${i.httpPort}`,
  `http://127.0.0.1:${i.metricsPort ?? i.httpPort}/metrics`,
  i.entry.database ? databaseName(i.entry.database) : "—",
]);
const header = ["process", "gRPC", "HTTP (/healthz)", "metrics", "database"];
const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c]!.length)));
const line = (cells: string[]) => cells.map((cell, c) => cell.padEnd(widths[c]!)).join("   ");
const firstGrpc = entries.find((s) => s.grpcPort !== undefined);
process.stdout.write(
  [
    "",
    paint(1, `Bazaar is up: all ${rows.length} processes healthy in ${seconds} s`),
    "",
    `  ${paint(1, line(header))}`,
    ...rows.map((r) => `  ${line(r)}`),
    "",
    `  Web storefront   ${all
      .filter((i) => i.entry.name === "bff")
      .map((i) => paint(4, `http://127.0.0.1:${i.httpPort}`))
      .join("  ")}`,
    firstGrpc ? `  Try grpcurl      grpcurl -plaintext 127.0.0.1:${port(firstGrpc.grpcPort ?? 0)} list` : "",
    `  Traces           ${otlpEndpoint ?? "not exported (set OTEL_EXPORTER_OTLP_ENDPOINT, e.g. http://127.0.0.1:4318)"}`,
    ...monitoring.map((m) => `  ${m.name.padEnd(16)} ${m.child.proc.exitCode === null ? paint(4, m.url) : paint(31, `exited (${m.child.proc.exitCode})`)}`),
    "  Stop             Ctrl-C",
    "",
  ].join("\n"),
);
// One plain line for scripts and tests to wait for.
say(`all healthy in ${Math.round(performance.now() - started)} ms`);
