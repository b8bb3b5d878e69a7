/**
 * The optional monitoring processes of `bun run dev`: Prometheus, Alertmanager, the Postgres,
 * Redis and node exporters (Debian's binaries, which scripts/setup.sh installs) and Jaeger
 * (when a `jaeger` binary is on PATH), as one table, and the file_sd target files
 * (deploy/prometheus/targets/*.json) that tell Prometheus where everything runs. The contract
 * for those files is the top comment of deploy/prometheus/prometheus.local.yml.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { ServiceEntry } from "@bazaar/platform/service-catalog";

/** Local default ports of the monitoring processes (the BFF's metrics port is 9100, so node_exporter takes 9110). */
export const monitoringPorts = {
  prometheus: 9090,
  alertmanager: 9093,
  postgresExporter: 9187,
  redisExporter: 9121,
  nodeExporter: 9110,
  rabbitmq: 15692,
  jaegerUi: 16686,
  jaegerOtlpHttp: 4318,
} as const;

/** One file_sd entry: targets (host:port) and their labels. */
export interface FileSdEntry {
  targets: string[];
  labels: Record<string, string>;
}

const host = "127.0.0.1";

/** A Bazaar process as the runner started it: its catalog entry, its name (`catalog-2` for an instance) and its metrics port. */
export interface ScrapedProcess {
  entry: ServiceEntry;
  name: string;
  metricsPort: number;
}

/**
 * The file_sd files (file name → entries) for Prometheus, given every Bazaar process the runner
 * started (`processes`, at its metrics port with any offset or override applied) and the ports of
 * everything else (`port(default)`). Each Bazaar process gets a `service` label.
 */
export function fileSdTargets(processes: readonly ScrapedProcess[], port: (defaultPort: number) => number): Record<string, FileSdEntry[]> {
  const one = (p: number): FileSdEntry[] => [{ targets: [`${host}:${port(p)}`], labels: {} }];
  const replicated = (entry: ServiceEntry) => processes.filter((p) => p.entry === entry).length > 1;
  return {
    // A service run as replicas (`--replicas`): one target per instance, each with an `instance`
    // label naming it as the runner's log prefix and address table do.
    "bazaar.json": processes.map(
      (p): FileSdEntry => ({
        targets: [`${host}:${p.metricsPort}`],
        labels: replicated(p.entry) ? { service: p.entry.name, instance: p.name } : { service: p.entry.name },
      }),
    ),
    // `bun run dev` runs no Envoy (compose does): no gateway target, rather than one always down.
    "gateway.json": [],
    "rabbitmq.json": [{ targets: [`${host}:${monitoringPorts.rabbitmq}`], labels: {} }],
    "postgres-exporter.json": one(monitoringPorts.postgresExporter),
    "redis-exporter.json": one(monitoringPorts.redisExporter),
    "node-exporter.json": one(monitoringPorts.nodeExporter),
    "alertmanager.json": one(monitoringPorts.alertmanager),
    "prometheus.json": one(monitoringPorts.prometheus),
  };
}

/** Writes the file_sd files into `dir` (created if missing); returns the paths written. */
export function writeFileSdTargets(dir: string, files: Record<string, FileSdEntry[]>): string[] {
  mkdirSync(dir, { recursive: true });
  return Object.entries(files).map(([file, entries]) => {
    const path = join(dir, file);
    writeFileSync(path, `${JSON.stringify(entries, null, 2)}\n`);
    return path;
  });
}

/** One optional monitoring process: what to run, where it answers, how to get it when missing. */
export interface MonitoringProcess {
  name: string;
  /** The binary: an absolute path, or a name looked up on PATH. */
  binary: string;
  args: string[];
  env?: Record<string, string>;
  /** Shown in the address table. */
  url: string;
  /** How to get the binary when it is missing. */
  install: string;
}

/** What the table needs to know about this run. */
export interface MonitoringSettings {
  root: string;
  /** A data directory (under the gitignored .dev/) for Prometheus's and Alertmanager's storage. */
  dataDir: string;
  postgresUrl: string;
  redisUrl: string;
  port: (defaultPort: number) => number;
}

/** Every optional monitoring process of `bun run dev`, in start order. */
export function monitoringProcesses(s: MonitoringSettings): MonitoringProcess[] {
  const at = (p: number) => `${host}:${s.port(p)}`;
  const apt = (pkg: string) => `bash scripts/setup.sh (or apt-get install ${pkg})`;
  return [
    {
      name: "prometheus",
      binary: "/usr/bin/prometheus",
      args: [
        `--config.file=${join(s.root, "deploy/prometheus/prometheus.local.yml")}`,
        "--enable-feature=exemplar-storage",
        `--storage.tsdb.path=${join(s.dataDir, "prometheus")}`,
        `--web.listen-address=${at(monitoringPorts.prometheus)}`,
      ],
      url: `http://${at(monitoringPorts.prometheus)}`,
      install: apt("prometheus"),
    },
    {
      name: "alertmanager",
      binary: "/usr/bin/prometheus-alertmanager",
      args: [
        `--config.file=${join(s.root, "deploy/alertmanager/alertmanager.yml")}`,
        `--storage.path=${join(s.dataDir, "alertmanager")}`,
        `--web.listen-address=${at(monitoringPorts.alertmanager)}`,
        // One Alertmanager, not a cluster: no gossip port.
        "--cluster.listen-address=",
      ],
      url: `http://${at(monitoringPorts.alertmanager)}`,
      install: apt("prometheus-alertmanager"),
    },
    {
      name: "postgres-exporter",
      binary: "/usr/bin/prometheus-postgres-exporter",
      args: [`--web.listen-address=${at(monitoringPorts.postgresExporter)}`],
      env: { DATA_SOURCE_NAME: withSslModeDisable(s.postgresUrl) },
      url: `http://${at(monitoringPorts.postgresExporter)}/metrics`,
      install: apt("prometheus-postgres-exporter"),
    },
    {
      name: "redis-exporter",
      binary: "/usr/bin/prometheus-redis-exporter",
      args: [`--web.listen-address=${at(monitoringPorts.redisExporter)}`, `--redis.addr=${s.redisUrl}`],
      url: `http://${at(monitoringPorts.redisExporter)}/metrics`,
      install: apt("prometheus-redis-exporter"),
    },
    {
      name: "node-exporter",
      binary: "/usr/bin/prometheus-node-exporter",
      // No systemd here (nor in most dev containers): its collector would log an error every scrape.
      args: [`--web.listen-address=${at(monitoringPorts.nodeExporter)}`, "--no-collector.systemd"],
      url: `http://${at(monitoringPorts.nodeExporter)}/metrics`,
      install: apt("prometheus-node-exporter"),
    },
    {
      name: "jaeger",
      binary: "jaeger",
      args: [],
      url: `http://${host}:${monitoringPorts.jaegerUi}`,
      install: "a `jaeger` binary on PATH (https://www.jaegertracing.io/download/)",
    },
  ];
}

/** postgres_exporter (lib/pq) wants TLS unless told otherwise; the dev Postgres has none. */
function withSslModeDisable(url: string): string {
  const u = new URL(url);
  if (!u.searchParams.has("sslmode")) u.searchParams.set("sslmode", "disable");
  return u.toString();
}

/** The binary's path, or undefined when it is not installed. */
export function resolveBinary(binary: string, exists: (path: string) => boolean): string | undefined {
  if (binary.startsWith("/")) return exists(binary) ? binary : undefined;
  return Bun.which(binary) ?? undefined;
}
