import { describe, expect, test } from "bun:test";
import { readdirSync } from "node:fs";
import { parse } from "yaml";
import { metricsPortOf, type ServiceEntry, serviceCatalog } from "@bazaar/platform/service-catalog";

// The Prometheus configs, recording and alert rules and the Alertmanager config are checked by
// their own tools (promtool, amtool) and run through promtool's rule unit tests; on top, the
// conventions the tools cannot see: every alert is documented, has a runbook, and is tested both
// firing and quiet; every Bazaar process is scraped.

const root = new URL("..", import.meta.url).pathname;
const prometheusDir = `${root}deploy/prometheus`;
const composeConfig = `${prometheusDir}/prometheus.compose.yml`;
const localConfig = `${prometheusDir}/prometheus.local.yml`;
const configs = [composeConfig, localConfig];
const alertmanagerConfig = `${root}deploy/alertmanager/alertmanager.yml`;
const yamlFiles = (dir: string) =>
  readdirSync(dir)
    .filter((f) => f.endsWith(".yml"))
    .sort()
    .map((f) => `${dir}/${f}`);
const ruleFiles = yamlFiles(`${prometheusDir}/rules`);
const testFiles = yamlFiles(`${prometheusDir}/tests`);
const catalog = serviceCatalog as readonly ServiceEntry[];

const missingTools = ["promtool", "amtool"].filter((tool) => !Bun.which(tool));

/** Runs a command to its end within `timeoutMs`, and fails with its output unless it exits 0. */
async function check(cmd: string[], timeoutMs = 30_000): Promise<string> {
  if (missingTools.length) throw new Error(`${missingTools.join(" and ")} not installed: run \`bash scripts/setup.sh\``);
  const proc = Bun.spawn(cmd, { cwd: root, stdout: "pipe", stderr: "pipe", timeout: timeoutMs, killSignal: "SIGKILL" });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  if (proc.signalCode) throw new Error(`${cmd.join(" ")} did not finish within ${timeoutMs} ms`);
  if (code !== 0) throw new Error(`${cmd.join(" ")} exited ${code}:\n${stdout}${stderr}`);
  return stdout + stderr;
}

interface AlertRule {
  alert: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
interface RuleFile {
  groups: { name: string; rules: ({ record: string } | AlertRule)[] }[];
}
interface RuleTestFile {
  tests: {
    name?: string;
    alert_rule_test?: { eval_time: string; alertname: string; exp_alerts?: { exp_labels?: Record<string, string> }[] }[];
  }[];
}
interface ScrapeConfig {
  job_name: string;
  static_configs?: { targets: string[]; labels?: Record<string, string> }[];
  file_sd_configs?: { files: string[] }[];
  relabel_configs?: { source_labels?: string[]; target_label?: string; regex?: string; replacement?: string }[];
}
interface PrometheusConfig {
  global: { scrape_interval: string; evaluation_interval: string };
  rule_files: string[];
  alerting: { alertmanagers: unknown[] };
  scrape_configs: ScrapeConfig[];
}

const readYaml = async <T>(path: string): Promise<T> => parse(await Bun.file(path).text()) as T;
const alerts: AlertRule[] = (await Promise.all(ruleFiles.map((f) => readYaml<RuleFile>(f)))).flatMap((file) =>
  file.groups.flatMap((g) => g.rules.filter((r): r is AlertRule => "alert" in r)),
);
const ruleTests = await Promise.all(testFiles.map(async (f) => ({ file: f, doc: await readYaml<RuleTestFile>(f) })));

/** `TargetDown` → `target-down`, `RabbitMQDiskAlarm` → `rabbit-mq-disk-alarm`. */
function kebab(name: string): string {
  return name
    .replace(/([a-z0-9])([A-Z])/g, "$1-$2")
    .replace(/([A-Z]+)([A-Z][a-z])/g, "$1-$2")
    .toLowerCase();
}

describe("Prometheus and Alertmanager configuration", () => {
  test("promtool and amtool are installed", () => {
    expect(missingTools, `not installed: ${missingTools.join(", ")}; run \`bash scripts/setup.sh\``).toEqual([]);
  });

  test.each(configs.map((c) => [c.slice(root.length)]))("promtool accepts %s and its rule files", async (config) => {
    // The local config's file_sd files are written by the dev runner; absent, promtool only warns.
    await check(["promtool", "check", "config", `${root}${config}`]);
  });

  test("promtool accepts every rule file", async () => {
    expect(ruleFiles.length).toBeGreaterThan(0);
    const out = await check(["promtool", "check", "rules", ...ruleFiles]);
    expect(out).not.toContain("FAILED");
  });

  test.each(testFiles.map((f) => [f.slice(root.length)]))("promtool's rule unit tests pass: %s", async (file) => {
    const out = await check(["promtool", "test", "rules", `${root}${file}`], 60_000);
    expect(out).toContain("SUCCESS");
  });

  test("amtool accepts the Alertmanager config", async () => {
    await check(["amtool", "check-config", alertmanagerConfig]);
  });

  test("both configs scrape and evaluate every 15 s, load the rules and send alerts to Alertmanager, with the same jobs", async () => {
    const [compose, local] = await Promise.all([readYaml<PrometheusConfig>(composeConfig), readYaml<PrometheusConfig>(localConfig)]);
    for (const config of [compose, local]) {
      expect(config.global).toMatchObject({ scrape_interval: "15s", evaluation_interval: "15s" });
      expect(config.rule_files).toEqual(["rules/*.yml"]);
      expect(config.alerting.alertmanagers.length).toBe(1);
    }
    expect(local.scrape_configs.map((j) => j.job_name)).toEqual(compose.scrape_configs.map((j) => j.job_name));
    for (const job of [
      "bazaar",
      "gateway",
      "rabbitmq",
      "rabbitmq-queues",
      "postgres-exporter",
      "redis-exporter",
      "node-exporter",
      "alertmanager",
      "prometheus",
    ]) {
      expect(compose.scrape_configs.map((j) => j.job_name)).toContain(job);
    }
  });

  test("compose's Prometheus scrapes every catalog process at its name and metrics port, and labels every target with its service", async () => {
    const compose = await readYaml<PrometheusConfig>(composeConfig);
    const bazaar = compose.scrape_configs.find((j) => j.job_name === "bazaar")!;
    const targets = bazaar.static_configs!.map((c) => ({ target: c.targets[0], service: c.labels?.service }));
    expect(targets).toEqual(catalog.map((s) => ({ target: `${s.name}:${metricsPortOf(s)}`, service: s.name })));
    for (const job of compose.scrape_configs) {
      for (const c of job.static_configs ?? []) expect(c.labels?.service, `${job.job_name}'s ${c.targets.join(", ")} has no service label`).toBeTruthy();
    }
  });

  test("the dev runner's Prometheus reads each job's targets from targets/<job>.json and gives every target a service", async () => {
    const local = await readYaml<PrometheusConfig>(localConfig);
    for (const job of local.scrape_configs) {
      expect(job.static_configs, job.job_name).toBeUndefined();
      const files = job.file_sd_configs!.flatMap((c) => c.files);
      // rabbitmq-queues scrapes the same plugin as rabbitmq, by another path
      expect(files).toEqual([`targets/${job.job_name === "rabbitmq-queues" ? "rabbitmq" : job.job_name}.json`]);
      expect(
        job.relabel_configs?.some((r) => r.target_label === "service" && r.source_labels?.[0] === "service"),
        `${job.job_name} may leave service unset`,
      ).toBe(true);
    }
  });
});

describe("alert rules", () => {
  test("there are alerts, with unique names, among them the ones other tools wait for", () => {
    const names = alerts.map((a) => a.alert);
    expect(new Set(names).size).toBe(names.length);
    expect(names).toContain("TargetDown");
    expect(names).toContain("DeadLetterQueueNotEmpty");
  });

  test("every alert has a severity, a summary, a templated description and a runbook that exists", async () => {
    for (const a of alerts) {
      expect(["critical", "warning"], `${a.alert}'s severity`).toContain(a.labels?.severity ?? "none");
      expect(a.annotations?.summary, `${a.alert}'s summary`).toBeTruthy();
      expect(a.annotations?.description, `${a.alert}'s description uses no label`).toContain("{{ $labels.");
      const runbook = `docs/runbooks/${kebab(a.alert)}.md`;
      expect(a.annotations?.runbook_url, `${a.alert}'s runbook_url`).toBe(runbook);
      expect(await Bun.file(`${root}${runbook}`).exists(), `${runbook} is missing`).toBe(true);
    }
  });

  test("every alert is tested firing (with its service label) and quiet", () => {
    const firing = new Set<string>();
    const quiet = new Set<string>();
    for (const { file, doc } of ruleTests) {
      for (const t of doc.tests) {
        for (const c of t.alert_rule_test ?? []) {
          const expected = c.exp_alerts ?? [];
          if (expected.length === 0) quiet.add(c.alertname);
          else firing.add(c.alertname);
          for (const e of expected) expect(e.exp_labels?.service, `${file}: ${c.alertname} at ${c.eval_time} fires without a service`).toBeTruthy();
        }
      }
    }
    const names = alerts.map((a) => a.alert);
    expect(
      names.filter((n) => !firing.has(n)),
      "alerts without a firing case",
    ).toEqual([]);
    expect(
      names.filter((n) => !quiet.has(n)),
      "alerts without a quiet case",
    ).toEqual([]);
    expect(
      [...firing, ...quiet].filter((n) => !names.includes(n)),
      "tests of alerts that do not exist",
    ).toEqual([]);
  });
});
