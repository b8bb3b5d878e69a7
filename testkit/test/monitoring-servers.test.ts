import { afterAll, describe, expect, test } from "bun:test";
import { eventually } from "../src/eventually.ts";
import { PrivateAlertmanager, PrivatePrometheus, startAlertWebhook } from "../src/monitoring-servers.ts";

// The kit's monitoring servers are real: Prometheus scrapes a target, a rule on what it scraped
// fires, the alert reaches Alertmanager and is posted to the webhook.
const webhook = startAlertWebhook();
const target = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("# TYPE kit_answer gauge\nkit_answer 42\n") });
let alertmanager: PrivateAlertmanager | undefined;
let prometheus: PrivatePrometheus | undefined;

afterAll(async () => {
  await prometheus?.destroy();
  await alertmanager?.destroy();
  webhook.stop();
  target.stop(true);
});

describe("monitoring servers of a test's own", () => {
  test("Prometheus scrapes a target, and an alert on what it scraped is posted to the webhook", async () => {
    alertmanager = await PrivateAlertmanager.create({
      route: { receiver: "test", group_wait: "0s", group_interval: "1s", repeat_interval: "1h" },
      receivers: [{ name: "test", webhook_configs: [{ url: webhook.url, send_resolved: true }] }],
    });
    prometheus = await PrivatePrometheus.create({
      config: {
        global: { scrape_interval: "1s", evaluation_interval: "1s" },
        rule_files: ["kit.yml"],
        alerting: { alertmanagers: [{ static_configs: [{ targets: [alertmanager.address] }] }] },
        scrape_configs: [{ job_name: "kit", static_configs: [{ targets: [`127.0.0.1:${target.port}`] }] }],
      },
      rules: {
        "kit.yml": "groups:\n  - name: kit\n    rules:\n      - alert: KitAnswered\n        expr: kit_answer == 42\n        labels: { severity: info }\n",
      },
    });
    await prometheus.waitForTargetsUp();
    expect((await prometheus.query("kit_answer"))[0]?.value).toBe(42);
    const notification = await eventually(() => webhook.notifications.find((n) => n.alerts.some((a) => a.labels.alertname === "KitAnswered")), {
      what: "KitAnswered at the webhook",
      timeoutMs: 20_000,
    });
    expect(notification.status).toBe("firing");
    expect(notification.alerts[0]?.labels.job).toBe("kit");
  }, 40_000);
});
