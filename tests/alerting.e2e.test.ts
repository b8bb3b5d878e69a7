/**
 * Alerts reach a person: the shipped alert rules (deploy/prometheus/rules/) in a real
 * Prometheus, the shipped routing (deploy/alertmanager/alertmanager.yml) in a real
 * Alertmanager, against a test platform, with a webhook standing where the pager would be.
 * Only the timings are shortened (every `for:` to 2 s, evaluation and scrapes every second,
 * Alertmanager's group waits to a second) and the receiver is the webhook; the scrape job keeps
 * the shipped job's relabelling, so the alerts carry the labels they would carry in production.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parse, stringify } from "yaml";
import { Broker } from "@bazaar/platform/messaging/broker";
import { replayDeadLetters } from "@bazaar/platform/messaging/dlq-replay";
import { events } from "@bazaar/platform/messaging/events";
import { ensureVhost } from "@bazaar/platform/messaging/vhost";
import { eventually } from "@bazaar/testkit/eventually";
import { repoRoot, testEnv } from "@bazaar/testkit/fixtures";
import { type AlertWebhook, type NotifiedAlert, PrivateAlertmanager, PrivatePrometheus, startAlertWebhook } from "@bazaar/testkit/monitoring-servers";
import { startTestPlatform, type TestPlatform } from "@bazaar/testkit/test-platform";

const stopped = "catalog" as const;
const consumer = { service: "notifications", queue: "notifications.events" } as const;

type Yaml = Record<string, unknown>;
const readYaml = (path: string) => parse(readFileSync(join(repoRoot, path), "utf8")) as Yaml;

/** The shipped rule files, every `for:` shortened to 2 s; nothing else changed. */
function shippedRules(): Record<string, string> {
  const dir = "deploy/prometheus/rules";
  return Object.fromEntries(
    readdirSync(join(repoRoot, dir))
      .filter((f) => f.endsWith(".yml"))
      .map((file) => {
        const rules = readYaml(join(dir, file)) as { groups: { rules: Yaml[] }[] };
        for (const group of rules.groups) for (const rule of group.rules) if (rule.for !== undefined) rule.for = "2s";
        return [file, stringify(rules)];
      }),
  );
}

/** The shipped Alertmanager config, its groups waiting a second and every notification to the webhook. */
function shippedAlertmanager(webhookUrl: string): Yaml {
  const config = readYaml("deploy/alertmanager/alertmanager.yml") as { route: Yaml & { routes?: Yaml[] }; receivers: Yaml[] };
  for (const route of [config.route, ...(config.route.routes ?? [])]) {
    if (route.group_wait !== undefined) route.group_wait = "1s";
    if (route.group_interval !== undefined) route.group_interval = "1s";
  }
  config.receivers = config.receivers.map((r) => (r.name === "default" ? { name: "default", webhook_configs: [{ url: webhookUrl, send_resolved: true }] } : r));
  return config;
}

/** The shipped `bazaar` scrape job (relabelling and all), its targets the test platform's processes. */
function bazaarJob(platform: TestPlatform, services: readonly string[]): Yaml {
  const shipped = readYaml("deploy/prometheus/prometheus.local.yml") as { scrape_configs: Yaml[] };
  const job = shipped.scrape_configs.find((j) => j.job_name === "bazaar");
  if (!job) throw new Error("deploy/prometheus/prometheus.local.yml has no job bazaar");
  const { file_sd_configs: _fileSd, ...rest } = job;
  return {
    ...rest,
    static_configs: services.map((name) => ({ targets: [new URL(platform.httpUrl(name as never)).host], labels: { service: name } })),
  };
}

/** The first alert of `alertname` with `status` whose labels include `labels`, with its notification's arrival time. */
function notified(
  webhook: AlertWebhook,
  alertname: string,
  status: "firing" | "resolved",
  labels: Record<string, string>,
): { alert: NotifiedAlert; at: number } | undefined {
  for (const n of webhook.notifications) {
    const alert = n.alerts.find((a) => a.status === status && a.labels.alertname === alertname && Object.entries(labels).every(([k, v]) => a.labels[k] === v));
    if (alert) return { alert, at: n.receivedAt };
  }
  return undefined;
}

let platform: TestPlatform | undefined;
let prometheus: PrivatePrometheus | undefined;
let alertmanager: PrivateAlertmanager | undefined;
let webhook: AlertWebhook | undefined;

/** The servers' logs, for a failure message. */
const logs = () => `\nPrometheus's log ends:\n${prometheus?.logTail(15)}\nAlertmanager's log ends:\n${alertmanager?.logTail(15)}`;

beforeAll(async () => {
  const services = ["identity", "catalog", "notifications"] as const;
  platform = await startTestPlatform({}, { only: services });
  webhook = startAlertWebhook();
  alertmanager = await PrivateAlertmanager.create(shippedAlertmanager(webhook.url));
  prometheus = await PrivatePrometheus.create({
    config: {
      global: { scrape_interval: "1s", scrape_timeout: "1s", evaluation_interval: "1s" },
      rule_files: Object.keys(shippedRules()),
      alerting: { alertmanagers: [{ static_configs: [{ targets: [alertmanager.address] }] }] },
      scrape_configs: [bazaarJob(platform, services)],
    },
    rules: shippedRules(),
  });
  await prometheus.waitForTargetsUp(20_000);
}, 75_000);

afterAll(async () => {
  await Promise.allSettled([prometheus?.destroy(), alertmanager?.destroy()]);
  webhook?.stop();
  await platform?.cleanup();
}, 30_000);

describe("alerts reach the webhook", () => {
  test(`a stopped ${stopped} pages TargetDown{service=${stopped}}, and its restart sends the resolved notification`, async () => {
    if (!platform || !webhook) throw new Error("not set up");
    const hook = webhook;
    const stoppedAt = Date.now();
    await platform.stop(stopped);
    const firing = await eventually(() => notified(hook, "TargetDown", "firing", { service: stopped }), {
      what: `TargetDown{service=${stopped}} firing at the webhook`,
      timeoutMs: 20_000,
      intervalMs: 100,
    }).catch((err: Error) => {
      throw new Error(`${err.message}${logs()}`);
    });
    console.log(`TargetDown: ${stopped} stopped → firing at the webhook in ${firing.at - stoppedAt} ms`);
    expect(firing.alert.labels.severity).toBe("critical");
    expect(firing.alert.annotations.runbook_url).toBe("docs/runbooks/target-down.md");
    // Only the stopped service is down.
    expect(webhook.notifications.flatMap((n) => n.alerts).filter((a) => a.labels.alertname === "TargetDown" && a.labels.service !== stopped)).toEqual([]);

    const restartedAt = Date.now();
    await platform.start(stopped);
    const resolved = await eventually(() => notified(hook, "TargetDown", "resolved", { service: stopped }), {
      what: `TargetDown{service=${stopped}} resolved at the webhook`,
      timeoutMs: 20_000,
      intervalMs: 100,
    }).catch((err: Error) => {
      throw new Error(`${err.message}${logs()}`);
    });
    console.log(`TargetDown: ${stopped} healthy again → resolved at the webhook in ${resolved.at - restartedAt} ms`);
  }, 45_000);

  test(`a poison message in ${consumer.queue} pages DeadLetterQueueNotEmpty{service=${consumer.service}} naming its queue`, async () => {
    if (!platform || !webhook) throw new Error("not set up");
    const hook = webhook;
    const amqpUrl = await ensureVhost(testEnv.AMQP_URL, platform.vhost);
    const publisher = await Broker.connect(amqpUrl, { service: "alerting-test" });
    let publishedAt: number;
    try {
      // Bytes that are no OrderPlaced: the consumer cannot decode them and dead-letters them at once.
      const id = crypto.randomUUID();
      const result = await publisher.publish([
        { id, routingKey: events.orderPlaced.routingKey, payload: new Uint8Array([0xff, 0xff, 0xff, 0xff]), headers: {} },
      ]);
      expect(result.acked).toEqual([id]);
      publishedAt = Date.now();
    } finally {
      await publisher.close();
    }
    // The broker's own view first: the consumer did dead-letter it (a dry run leaves it there).
    await eventually(async () => (await replayDeadLetters(amqpUrl, consumer.queue, { dryRun: true })).length > 0, {
      what: `the poison message in ${consumer.queue}.dlq`,
    });
    const firing = await eventually(() => notified(hook, "DeadLetterQueueNotEmpty", "firing", { service: consumer.service }), {
      what: `DeadLetterQueueNotEmpty{service=${consumer.service}} firing at the webhook`,
      timeoutMs: 20_000,
      intervalMs: 100,
    }).catch(async (err: Error) => {
      const dlq = await prometheus?.query("bazaar_dlq_messages").catch((e: Error) => e.message);
      throw new Error(`${err.message}; bazaar_dlq_messages now: ${JSON.stringify(dlq)}${logs()}`);
    });
    console.log(`DeadLetterQueueNotEmpty: poison message published → firing at the webhook in ${firing.at - publishedAt} ms`);
    expect(firing.alert.labels.queue).toBe(consumer.queue);
    expect(firing.alert.labels.severity).toBe("warning");
  }, 30_000);
});
