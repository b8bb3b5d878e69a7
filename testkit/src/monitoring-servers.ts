/**
 * Monitoring servers of a test's own: a real Prometheus and a real Alertmanager (Debian's
 * `prometheus` and `prometheus-alertmanager`, which scripts/setup.sh installs), each in a
 * temporary directory on free ports, and a webhook receiver standing where a person's pager
 * would. Tests that check alert rules, dashboards' queries or alert delivery run them against a
 * test platform; the machine's own monitoring (if any) is never touched.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify } from "yaml";
import { eventually } from "./eventually.ts";
import { freePort } from "./fixtures.ts";

/** Where Debian puts the binaries. */
export const monitoringBinaries = {
  prometheus: "/usr/bin/prometheus",
  promtool: "/usr/bin/promtool",
  alertmanager: "/usr/bin/prometheus-alertmanager",
  amtool: "/usr/bin/amtool",
} as const;

function requireBinary(path: string): void {
  if (!existsSync(path)) throw new Error(`${path} is missing: run \`bash scripts/setup.sh\` (it installs Debian's prometheus and prometheus-alertmanager)`);
}

/** A server process of a test's own, with its log kept for the failure message. */
class MonitoringProcess {
  private readonly proc: ReturnType<typeof Bun.spawn>;

  private constructor(
    readonly name: string,
    readonly dir: string,
    readonly url: string,
    argv: string[],
  ) {
    this.proc = Bun.spawn(argv, { cwd: dir, stdout: Bun.file(join(dir, "log")), stderr: Bun.file(join(dir, "log")) });
  }

  /**
   * Writes `files` into a temporary directory of its own, starts `binary` with the arguments
   * `argv(dir, port)` makes for a free port, and waits until its `/-/ready` answers (deleting
   * everything again if it does not).
   */
  static async launch(name: string, binary: string, files: Record<string, string>, argv: (dir: string, port: number) => string[]): Promise<MonitoringProcess> {
    requireBinary(binary);
    const dir = mkdtempSync(join(tmpdir(), `bazaar-${name}-`));
    for (const [file, text] of Object.entries(files)) writeFileSync(join(dir, file), text);
    const port = freePort();
    const server = new MonitoringProcess(name, dir, `http://127.0.0.1:${port}`, [binary, ...argv(dir, port)]);
    try {
      await server.waitReady(`${server.url}/-/ready`);
    } catch (err) {
      await server.destroy();
      throw err;
    }
    return server;
  }

  /** The last lines of its log, for an error message. */
  logTail(lines = 30): string {
    const path = join(this.dir, "log");
    return existsSync(path) ? readFileSync(path, "utf8").split("\n").slice(-lines).join("\n") : "(no log)";
  }

  async waitReady(url: string, timeoutMs = 20_000): Promise<void> {
    await eventually(
      async () => {
        if (this.proc.exitCode !== null) throw new Error(`${this.name} exited with ${this.proc.exitCode}; its log ends:\n${this.logTail()}`);
        const res = await fetch(url, { signal: AbortSignal.timeout(1_000) }).catch(() => undefined);
        return res?.ok ? true : undefined;
      },
      { what: `${this.name} ready at ${url}`, timeoutMs },
    ).catch((err: Error) => {
      throw new Error(`${err.message}\n${this.name}'s log ends:\n${this.logTail()}`);
    });
  }

  async stop(): Promise<void> {
    if (this.proc.exitCode !== null) return;
    this.proc.kill("SIGTERM");
    const timer = setTimeout(() => this.proc.kill("SIGKILL"), 5_000);
    await this.proc.exited;
    clearTimeout(timer);
  }

  /** Stops it and deletes its directory. */
  async destroy(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** One sample of an instant query's result. */
export interface PromSample {
  metric: Record<string, string>;
  value: number;
}

/** Options of {@link PrivatePrometheus.create}. */
export interface PrivatePrometheusOptions {
  /** The configuration (prometheus.yml) as an object; `rule_files` may name files of `rules`. */
  config: Record<string, unknown>;
  /** Rule files written beside the configuration: file name → YAML text. */
  rules?: Record<string, string>;
}

/** A Prometheus of the test's own (exemplar storage on, as the shipped configs run it). */
export class PrivatePrometheus {
  private constructor(private readonly server: MonitoringProcess) {}

  /** Its base URL, http://127.0.0.1:port. */
  get url(): string {
    return this.server.url;
  }

  static async create(options: PrivatePrometheusOptions): Promise<PrivatePrometheus> {
    const server = await MonitoringProcess.launch(
      "prometheus",
      monitoringBinaries.prometheus,
      { ...options.rules, "prometheus.yml": stringify(options.config) },
      (dir, port) => [
        `--config.file=${join(dir, "prometheus.yml")}`,
        `--storage.tsdb.path=${join(dir, "data")}`,
        `--web.listen-address=127.0.0.1:${port}`,
        "--enable-feature=exemplar-storage",
        "--web.enable-lifecycle",
      ],
    );
    return new PrivatePrometheus(server);
  }

  private async api<T>(path: string, params: Record<string, string>): Promise<T> {
    const res = await fetch(`${this.url}/api/v1/${path}?${new URLSearchParams(params)}`, { signal: AbortSignal.timeout(10_000) });
    const body = (await res.json()) as { status: string; data: T; error?: string };
    if (body.status !== "success") throw new Error(`Prometheus ${path} ${JSON.stringify(params)}: ${body.error ?? res.status}`);
    return body.data;
  }

  /** An instant query; a scalar comes back as one sample without labels. */
  async query(expr: string): Promise<PromSample[]> {
    const data = await this.api<{ resultType: string; result: unknown }>("query", { query: expr });
    if (data.resultType === "scalar") return [{ metric: {}, value: Number((data.result as [number, string])[1]) }];
    if (data.resultType !== "vector") throw new Error(`${expr}: expected a vector, got ${data.resultType}`);
    return (data.result as { metric: Record<string, string>; value: [number, string] }[]).map((r) => ({ metric: r.metric, value: Number(r.value[1]) }));
  }

  /** Exemplars of a query over the last `seconds`. */
  async exemplars(
    expr: string,
    seconds = 300,
  ): Promise<{ seriesLabels: Record<string, string>; exemplars: { labels: Record<string, string>; value: string }[] }[]> {
    const end = Date.now() / 1000;
    return this.api("query_exemplars", { query: expr, start: String(end - seconds), end: String(end) });
  }

  /** The scrape targets and their health. */
  async targets(): Promise<{ labels: Record<string, string>; health: string; lastError: string; scrapeUrl: string }[]> {
    const data = await this.api<{ activeTargets: { labels: Record<string, string>; health: string; lastError: string; scrapeUrl: string }[] }>("targets", {
      state: "active",
    });
    return data.activeTargets;
  }

  /** Waits until every target has been scraped successfully. */
  async waitForTargetsUp(timeoutMs = 30_000): Promise<void> {
    await eventually(
      async () => {
        const targets = await this.targets();
        return targets.length > 0 && targets.every((t) => t.health === "up") ? true : undefined;
      },
      { what: "every scrape target up", timeoutMs },
    ).catch(async (err: Error) => {
      const down = (await this.targets().catch(() => [])).filter((t) => t.health !== "up");
      throw new Error(`${err.message}; not up: ${down.map((t) => `${t.scrapeUrl} (${t.health}: ${t.lastError})`).join(", ")}`);
    });
  }

  /** Alerts Prometheus holds now (pending or firing). */
  async alerts(): Promise<{ labels: Record<string, string>; state: string }[]> {
    return (await this.api<{ alerts: { labels: Record<string, string>; state: string }[] }>("alerts", {})).alerts;
  }

  logTail(lines?: number): string {
    return this.server.logTail(lines);
  }

  async destroy(): Promise<void> {
    await this.server.destroy();
  }
}

/** An Alertmanager of the test's own, not clustered. */
export class PrivateAlertmanager {
  private constructor(private readonly server: MonitoringProcess) {}

  /** Its base URL, http://127.0.0.1:port. */
  get url(): string {
    return this.server.url;
  }

  /** Starts it with `config` (alertmanager.yml as an object). */
  static async create(config: Record<string, unknown>): Promise<PrivateAlertmanager> {
    const server = await MonitoringProcess.launch("alertmanager", monitoringBinaries.alertmanager, { "alertmanager.yml": stringify(config) }, (dir, port) => [
      `--config.file=${join(dir, "alertmanager.yml")}`,
      `--storage.path=${join(dir, "data")}`,
      `--web.listen-address=127.0.0.1:${port}`,
      // Not a cluster: no gossip port to collide with another test's.
      "--cluster.listen-address=",
    ]);
    return new PrivateAlertmanager(server);
  }

  /** host:port, as Prometheus's alerting config names it. */
  get address(): string {
    return new URL(this.url).host;
  }

  logTail(lines?: number): string {
    return this.server.logTail(lines);
  }

  async destroy(): Promise<void> {
    await this.server.destroy();
  }
}

/** One alert of an Alertmanager webhook notification. */
export interface NotifiedAlert {
  status: "firing" | "resolved";
  labels: Record<string, string>;
  annotations: Record<string, string>;
  startsAt: string;
  endsAt: string;
}

/** A webhook notification, as Alertmanager posts it (version 4), with when it arrived. */
export interface AlertNotification {
  receivedAt: number;
  status: "firing" | "resolved";
  receiver: string;
  groupLabels: Record<string, string>;
  alerts: NotifiedAlert[];
}

/** A webhook receiver: where the alerts that would page a person arrive in a test. */
export interface AlertWebhook {
  url: string;
  notifications: AlertNotification[];
  stop(): void;
}

/** Starts a webhook receiver on a free port that records every notification Alertmanager posts. */
export function startAlertWebhook(): AlertWebhook {
  const notifications: AlertNotification[] = [];
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      if (req.method !== "POST") return new Response("POST notifications here", { status: 405 });
      const body = (await req.json()) as Omit<AlertNotification, "receivedAt">;
      notifications.push({ ...body, receivedAt: Date.now() });
      return new Response("ok");
    },
  });
  return { url: `http://127.0.0.1:${server.port}/alerts`, notifications, stop: () => server.stop(true) };
}
