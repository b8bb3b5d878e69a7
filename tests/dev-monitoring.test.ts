/**
 * The dev runner's monitoring: the file_sd target files agree with the service catalog and with
 * the jobs of deploy/prometheus/prometheus.local.yml, and the runner's Prometheus command line
 * (from the monitoring table) starts a real Prometheus that scrapes what those files name.
 */
import { describe, expect, test } from "bun:test";
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse } from "yaml";
import { serviceCatalog, type ServiceEntry } from "@bazaar/platform/service-catalog";
import { eventually } from "@bazaar/testkit/eventually";
import { freePort, repoRoot } from "@bazaar/testkit/fixtures";
import { fileSdTargets, monitoringPorts, monitoringProcesses, writeFileSdTargets } from "../scripts/dev-monitoring.ts";

const entries = serviceCatalog as readonly ServiceEntry[];
const shifted = (p: number) => p + 1000;

describe("file_sd targets of bun run dev", () => {
  test("one bazaar.json entry per catalog process, at the port it was started on, labelled with its service", () => {
    const ports = new Map(entries.map((e, i) => [e.name, 20_000 + i]));
    const files = fileSdTargets(
      entries.map((e) => ({ entry: e, name: e.name, metricsPort: ports.get(e.name) ?? 0 })),
      shifted,
    );
    expect(files["bazaar.json"]).toEqual(entries.map((e) => ({ targets: [`127.0.0.1:${ports.get(e.name)}`], labels: { service: e.name } })));
    expect(files["prometheus.json"]).toEqual([{ targets: [`127.0.0.1:${shifted(9090)}`], labels: {} }]);
    expect(files["node-exporter.json"]).toEqual([{ targets: [`127.0.0.1:${shifted(9110)}`], labels: {} }]);
  });

  test("every file the shipped prometheus.local.yml reads is written, and nothing else", () => {
    const config = parse(readFileSync(join(repoRoot, "deploy/prometheus/prometheus.local.yml"), "utf8")) as {
      scrape_configs: { file_sd_configs?: { files: string[] }[] }[];
      alerting: { alertmanagers: { file_sd_configs?: { files: string[] }[] }[] };
    };
    const read = new Set(
      [...config.scrape_configs, ...config.alerting.alertmanagers].flatMap((j) =>
        (j.file_sd_configs ?? []).flatMap((sd) => sd.files.map((f) => f.replace(/^targets\//, ""))),
      ),
    );
    expect(Object.keys(fileSdTargets([], shifted)).sort()).toEqual([...read].sort());
  });
});

describe("the monitoring table", () => {
  const table = monitoringProcesses({
    root: "/repo",
    dataDir: "/repo/.dev",
    postgresUrl: "postgres://postgres@127.0.0.1:5432/postgres",
    redisUrl: "redis://127.0.0.1:6379",
    port: shifted,
  });

  test("Prometheus runs the shipped local config with exemplar storage and its data under .dev/", () => {
    const prometheus = table.find((m) => m.name === "prometheus");
    expect(prometheus?.args).toEqual([
      "--config.file=/repo/deploy/prometheus/prometheus.local.yml",
      "--enable-feature=exemplar-storage",
      "--storage.tsdb.path=/repo/.dev/prometheus",
      `--web.listen-address=127.0.0.1:${shifted(9090)}`,
    ]);
  });

  test("every process listens where its target file says, and says how to install it", () => {
    const listen = (name: string) => table.find((m) => m.name === name)?.args.find((a) => a.startsWith("--web.listen-address="));
    expect(listen("alertmanager")).toBe(`--web.listen-address=127.0.0.1:${shifted(monitoringPorts.alertmanager)}`);
    expect(listen("postgres-exporter")).toBe(`--web.listen-address=127.0.0.1:${shifted(monitoringPorts.postgresExporter)}`);
    expect(listen("redis-exporter")).toBe(`--web.listen-address=127.0.0.1:${shifted(monitoringPorts.redisExporter)}`);
    expect(listen("node-exporter")).toBe(`--web.listen-address=127.0.0.1:${shifted(monitoringPorts.nodeExporter)}`);
    expect(table.find((m) => m.name === "alertmanager")?.args).toContain("--cluster.listen-address=");
    expect(table.find((m) => m.name === "postgres-exporter")?.env?.DATA_SOURCE_NAME).toBe("postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable");
    for (const m of table) expect(m.install.length).toBeGreaterThan(0);
    expect(new Set(table.map((m) => m.name)).size).toBe(table.length);
  });
});

describe.skipIf(!existsSync("/usr/bin/prometheus"))("the runner's Prometheus, for real", () => {
  test("scrapes every catalog process at the port the target file names, with its service label", async () => {
    // A copy of the shipped config and rules, so the developer's own targets/ is not touched.
    const root = mkdtempSync(join(tmpdir(), "bazaar-dev-monitoring-"));
    cpSync(join(repoRoot, "deploy/prometheus/prometheus.local.yml"), join(root, "deploy/prometheus/prometheus.local.yml"));
    cpSync(join(repoRoot, "deploy/prometheus/rules"), join(root, "deploy/prometheus/rules"), { recursive: true });
    // identity is "running" (something serves /metrics at its port); the others are not.
    const identity = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response('bazaar_up_probe{service="identity"} 1\n') });
    const promPort = freePort();
    const port = (p: number) => (p === monitoringPorts.prometheus ? promPort : p);
    const ports = new Map(entries.map((e) => [e.name, e.name === "identity" ? (identity.port ?? 0) : freePort()]));
    writeFileSdTargets(
      join(root, "deploy/prometheus/targets"),
      fileSdTargets(
        entries.map((e) => ({ entry: e, name: e.name, metricsPort: ports.get(e.name) ?? 0 })),
        port,
      ),
    );
    const prometheus = monitoringProcesses({
      root,
      dataDir: join(root, ".dev"),
      postgresUrl: "postgres://x@127.0.0.1/x",
      redisUrl: "redis://127.0.0.1",
      port,
    }).find((m) => m.name === "prometheus");
    if (!prometheus) throw new Error("no prometheus in the table");
    const proc = Bun.spawn(["/usr/bin/prometheus", ...prometheus.args, "--scrape.discovery-reload-interval=1s"], { stdout: "ignore", stderr: "ignore" });
    try {
      type Target = { labels: Record<string, string>; health: string; scrapeUrl: string };
      const bazaar = await eventually(
        async () => {
          const res = await fetch(`http://127.0.0.1:${promPort}/api/v1/targets?state=active`, { signal: AbortSignal.timeout(1_000) }).catch(() => undefined);
          if (!res?.ok) return undefined;
          const targets = ((await res.json()) as { data: { activeTargets: Target[] } }).data.activeTargets.filter((t) => t.labels.job === "bazaar");
          const identityTarget = targets.find((t) => t.labels.service === "identity");
          return targets.length === entries.length && identityTarget?.health === "up" ? targets : undefined;
        },
        { what: "Prometheus to scrape identity among every bazaar target", timeoutMs: 30_000, intervalMs: 250 },
      );
      expect(bazaar.map((t) => t.labels.service).sort()).toEqual(entries.map((e) => e.name).sort());
      for (const t of bazaar) expect(t.labels.instance).toBe(`127.0.0.1:${ports.get(t.labels.service ?? "")}`);
    } finally {
      proc.kill("SIGTERM");
      await proc.exited;
      identity.stop(true);
      rmSync(root, { recursive: true, force: true });
    }
  }, 45_000);
});
