// biome-ignore-all lint/suspicious/noExplicitAny: the dashboards are parsed JSON, an untyped document whose shape deploy/grafana/dashboards.test.ts checks.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { parse } from "yaml";
import { Broker } from "@bazaar/platform/messaging/broker";
import { events } from "@bazaar/platform/messaging/events";
import { ensureVhost } from "@bazaar/platform/messaging/vhost";
import { jwksUrl, type ServiceName, serviceCatalog, tokenEndpointUrl } from "@bazaar/platform/service-catalog";
import { eventually } from "@bazaar/testkit/eventually";
import {
  type BearerAuth,
  bearer,
  getJson,
  launchProcess,
  type LaunchedProcess,
  registerAndLogin,
  repoRoot,
  testEnv,
  uniqueName,
} from "@bazaar/testkit/fixtures";
import { PrivatePrometheus } from "@bazaar/testkit/monitoring-servers";
import { startTestPlatform, stockedProducts, type TestPlatform } from "@bazaar/testkit/test-platform";
import { OrderStatus } from "@bazaar/proto/bazaar/orders/v1/orders_pb";
import { externalMetrics } from "../deploy/grafana/generate.ts";

// Dashboards that always show data: a whole platform and the BFF run, a Prometheus of this
// test's own scrapes every process as the shipped config does (same jobs, labels and
// relabelling, every second), light load goes through (sign-ups, product reads through the
// caches, cart adds, orders confirmed and one cancelled, a poison message), and then every
// query of every committed panel runs against that Prometheus over the test's time range.
// Each returns data, or is on the allow-list below with the reason it cannot here (and its
// description says when it is empty); an allow-listed panel that does return data fails the
// test too, so the list stays honest.

const dashboardsDir = `${repoRoot}/deploy/grafana/dashboards/`;
const dashboards = readdirSync(dashboardsDir)
  .filter((f) => f.endsWith(".json"))
  .map((f) => JSON.parse(readFileSync(`${dashboardsDir}${f}`, "utf8")));

const gatewayReason = "Envoy is not run in this test (the gateway's /stats/prometheus is scraped in compose and Kubernetes)";
const rabbitmqReason = "RabbitMQ's Prometheus plugin is not enabled on the test machine's broker";
const redisReason = "the Redis exporter is not run in this test";

/** Panels that cannot return data in this test, by "dashboard uid / panel title", with why. */
const allowList: Record<string, string> = {
  ...Object.fromEntries(
    dashboards.filter((d) => d.uid === "bazaar-gateway").flatMap((d) => d.panels.map((p: any) => [`${d.uid} / ${p.title}`, gatewayReason])),
  ),
  "bazaar-messaging / RabbitMQ messages ready and unacked": rabbitmqReason,
  "bazaar-messaging / RabbitMQ connections": rabbitmqReason,
  "bazaar-cache / Redis up": redisReason,
  "bazaar-cache / Redis clients": redisReason,
  "bazaar-cache / Redis memory": redisReason,
  "bazaar-cache / Redis commands": redisReason,
  "bazaar-cache / Failed cache commands":
    "Redis answers every command here: the counter's series appear only on a failure (tests/dependency-outages.test.ts makes them)",
  "bazaar-messaging / Redelivered": "no handler fails in this test: the series appears only on a redelivery (platform/test/messaging.test.ts makes them)",
  "bazaar-inventory / Outgoing calls p95": "inventory calls catalog only once, at start (its catalog backfill), before any load",
  "bazaar-checkout-saga / Step retries": "no saga step fails transiently in this test: the series appears only on a retry (tests/faults.test.ts makes them)",
};

/** Metrics Prometheus makes itself. */
const prometheusMetrics = ["up"];

/** A query's time range and the values Grafana would give its variables. */
let rangeStart = 0;
const rateInterval = "1m";

let platform: TestPlatform;
let bff: LaunchedProcess;
let prometheus: PrivatePrometheus;
let broker: Broker | undefined;
/** Every sample name some process serves (or declares) on /metrics. */
const servedMetrics = new Set<string>();

/**
 * The shipped Prometheus config with every target of a running process pointed at this test's
 * port for it, everything else (jobs, labels, relabelling) as shipped; targets this test does
 * not run (the gateway, RabbitMQ's plugin, exporters, Prometheus itself) are left out.
 */
function scrapeConfig(addressOf: (name: string) => string | undefined): Record<string, unknown> {
  const shipped = parse(readFileSync(`${repoRoot}/deploy/prometheus/prometheus.compose.yml`, "utf8"));
  const jobs = (shipped.scrape_configs as any[]).flatMap((job) => {
    const staticConfigs = (job.static_configs ?? []).flatMap((sc: any) => {
      const targets = (sc.targets as string[]).flatMap((t) => {
        const address = addressOf(t.split(":")[0]!);
        return address ? [address] : [];
      });
      return targets.length ? [{ ...sc, targets }] : [];
    });
    return staticConfigs.length ? [{ ...job, static_configs: staticConfigs, scrape_interval: "1s", scrape_timeout: "1s" }] : [];
  });
  return { global: { ...shipped.global, scrape_interval: "1s", evaluation_interval: "1s" }, scrape_configs: jobs };
}

async function queryRange(expr: string): Promise<{ metric: Record<string, string>; values: [number, string][] }[]> {
  const end = Date.now() / 1000;
  const params = new URLSearchParams({ query: expr, start: String(rangeStart), end: String(end), step: "1" });
  const res = await fetch(`${prometheus.url}/api/v1/query_range?${params}`, { signal: AbortSignal.timeout(10_000) });
  const body = (await res.json()) as { status: string; data: { result: any[] }; error?: string };
  if (body.status !== "success") throw new Error(`${expr}: ${body.error}`);
  return body.data.result;
}

/** A panel query with its variables resolved as Grafana would with All selected. */
function resolve(expr: string): string {
  const rangeSeconds = Math.max(60, Math.ceil(Date.now() / 1000 - rangeStart));
  return expr
    .replaceAll("$__rate_interval", rateInterval)
    .replaceAll("$__interval", "15s")
    .replaceAll("$__range", `${rangeSeconds}s`)
    .replaceAll("$service", ".*")
    .replaceAll("$instance", ".*");
}

/** Whether any point of any series is a number (NaN is what Grafana shows as no value). */
const hasData = (result: { values: [number, string][] }[]) => result.some((s) => s.values.some(([, v]) => !Number.isNaN(Number(v))));

interface PanelQuery {
  key: string;
  panel: any;
  exprs: string[];
}
const panels: PanelQuery[] = dashboards.flatMap((d) =>
  d.panels.map((p: any) => {
    const exprs: string[] = p.targets.map((t: any) => t.expr);
    return { key: `${d.uid} / ${p.title}`, panel: p, exprs };
  }),
);

/** The metric names a query reads (without label matchers, ranges, groupings and functions). */
function metricNames(expr: string): string[] {
  const bare = expr
    .replace(/\{[^}]*\}/g, "")
    .replace(/\[[^\]]*\]/g, "")
    .replace(/\b(by|without)\s*\([^)]*\)/g, "")
    .replace(/"[^"]*"/g, "");
  const functions = new Set(["sum", "max", "min", "rate", "increase", "histogram_quantile", "or", "and", "label_values"]);
  return [...new Set((bare.match(/[a-zA-Z_:][\w:]*/g) ?? []).filter((w) => !functions.has(w)))];
}

async function newShopper(): Promise<BearerAuth> {
  const { tokens } = await registerAndLogin(platform.clients.identity);
  return bearer(tokens.accessToken);
}

const goodCard = { number: "4242 4242 4242 4242", expiryMonth: 12, expiryYear: new Date().getFullYear() + 3, cvc: "0917" };
const declinedCard = { ...goodCard, number: "4000 0000 0000 0002", cvc: "0386" };

async function checkout(auth: BearerAuth, productId: string, card: typeof goodCard): Promise<OrderStatus> {
  const { cart, orders, payments } = platform.clients;
  await cart.addItem({ productId, quantity: 1 }, auth);
  const { paymentMethod } = await payments.createPaymentMethod({ card }, auth);
  const placed = await orders.placeOrder(
    { idempotencyKey: uniqueName("dashboards"), lines: [{ productId, quantity: 1 }], paymentMethodToken: paymentMethod!.token },
    auth,
  );
  const order = await eventually(
    async () => {
      const { order } = await orders.getOrder({ id: placed.order!.id }, auth);
      return order && order.status !== OrderStatus.PENDING ? order : undefined;
    },
    { what: `order ${placed.order!.id} to be final`, timeoutMs: 20_000 },
  );
  return order.status;
}

/** One round of the light load. */
async function shop(): Promise<void> {
  const shoppers = await Promise.all([newShopper(), newShopper(), newShopper()]);
  const { products } = await getJson<{ products: { id: string }[] }>(`${bff.httpUrl}/api/products?pageSize=5`);
  for (let i = 0; i < 2; i++) {
    for (const p of products.slice(0, 3)) await getJson(`${bff.httpUrl}/api/products/${p.id}`);
    for (const p of products.slice(0, 3)) await platform.clients.catalog.getProduct({ id: p.id });
  }
  const stocked = await stockedProducts(platform.clients, 3, 3);
  const outcomes = await Promise.all([
    checkout(shoppers[0]!, stocked[0]!.id, goodCard),
    checkout(shoppers[1]!, stocked[1]!.id, goodCard),
    checkout(shoppers[2]!, stocked[2]!.id, declinedCard),
  ]);
  expect(outcomes).toEqual([OrderStatus.CONFIRMED, OrderStatus.CONFIRMED, OrderStatus.CANCELLED]);
  for (const auth of shoppers) await platform.clients.notifications.listNotifications({}, auth);
  const poison = await broker!.publish([
    { id: crypto.randomUUID(), routingKey: events.orderPlaced.routingKey, payload: new Uint8Array([0xff, 0xff, 0xff]), headers: {} },
  ]);
  expect(poison.acked.length).toBe(1);
}

beforeAll(async () => {
  rangeStart = Date.now() / 1000;
  platform = await startTestPlatform();
  const vhostUrl = await ensureVhost(testEnv.AMQP_URL, platform.vhost);
  const identityHttpPort = Number(new URL(platform.httpUrl("identity")).port);
  const peers = Object.fromEntries(
    serviceCatalog.flatMap((e) => ("grpcPort" in e ? [[`${e.name.toUpperCase()}_ADDR`, platform.address(e.name as ServiceName)]] : [])),
  );
  bff = await launchProcess("bff", {
    ...peers,
    JWKS_URL: jwksUrl("127.0.0.1", identityHttpPort),
    OAUTH_TOKEN_URL: tokenEndpointUrl("127.0.0.1", identityHttpPort),
    AMQP_URL: vhostUrl,
  });
  const metricsAddress = (name: string): string | undefined => {
    if (name === "bff") return new URL(bff.metricsUrl).host;
    return serviceCatalog.some((e) => e.name === name && "grpcPort" in e) ? new URL(platform.httpUrl(name as ServiceName)).host : undefined;
  };
  prometheus = await PrivatePrometheus.create({ config: scrapeConfig(metricsAddress) });
  await prometheus.waitForTargetsUp();

  // Light load, twice: a labelled series appears with its first increment, which rate() cannot
  // see (it needs two samples), so the first round makes the series and the second moves them.
  // Shoppers sign up, read products through the BFF (its page cache and catalog's product
  // cache: a miss, then hits), fill carts, check out twice with a good card and once with a
  // declined one; a poison message goes to notifications' dead-letter queue.
  broker = await Broker.connect(vhostUrl, { service: "dashboards-test" });
  await shop();
  const firstRoundDone = Date.now() / 1000;
  await eventually(async () => ((await prometheus.query('min(timestamp(up{job="bazaar"}))'))[0]?.value ?? 0) > firstRoundDone, {
    what: "Prometheus to have scraped every process after the first round",
    timeoutMs: 10_000,
  });
  await shop();

  for (const url of [
    ...serviceCatalog.filter((e) => "grpcPort" in e).map((e) => `${platform.httpUrl(e.name as ServiceName)}/metrics`),
    `${bff.metricsUrl}/metrics`,
  ]) {
    const text = await (await fetch(url)).text();
    for (const line of text.split("\n")) {
      // A labelled counter no one has incremented has its TYPE line and no sample yet. /metrics
      // speaks OpenMetrics, whose TYPE line names a counter without its samples' `_total`.
      const declared = /^# TYPE (\S+) (\w+)$/.exec(line);
      if (declared) {
        const suffixes: Record<string, string[]> = { histogram: ["_bucket", "_count", "_sum"], summary: ["", "_count", "_sum"], counter: ["_total"] };
        for (const suffix of suffixes[declared[2]!] ?? [""]) servedMetrics.add(`${declared[1]}${suffix}`);
      } else if (line && !line.startsWith("#")) servedMetrics.add(line.split(/[{ ]/)[0]!);
    }
  }
}, 100_000);

afterAll(async () => {
  await broker?.close();
  await prometheus?.destroy();
  await bff?.cleanup();
  await platform?.cleanup();
}, 60_000);

describe("the dashboards against a running platform", () => {
  test("every metric a panel reads is served by some process, made by Prometheus, or an exporter's or Envoy's on the documented list", () => {
    const external = new Set<string>(Object.values(externalMetrics).flat());
    const unknown = panels.flatMap((p) =>
      p.exprs
        .flatMap(metricNames)
        .filter((m) => !servedMetrics.has(m) && !external.has(m) && !prometheusMetrics.includes(m))
        .map((m) => `${p.key}: ${m}`),
    );
    expect(unknown).toEqual([]);
    // The documented list is of metrics no process serves: one a process serves belongs to it.
    expect([...external].filter((m) => servedMetrics.has(m))).toEqual([]);
  });

  test("every template variable lists values", async () => {
    for (const d of dashboards) {
      for (const v of d.templating.list) {
        const m = /^label_values\((.+), (\w+)\)$/.exec(v.query.query);
        expect(m, `${d.uid} $${v.name}: ${v.query.query}`).not.toBeNull();
        const match = m![1]!.replaceAll("$service", ".*");
        const values = await eventually(
          async () => {
            const res = await fetch(`${prometheus.url}/api/v1/label/${m![2]}/values?${new URLSearchParams({ "match[]": match })}`);
            const { data } = (await res.json()) as { data: string[] };
            return data.length ? data : undefined;
          },
          { what: `values of ${d.uid} $${v.name}`, timeoutMs: 5_000 },
        );
        expect(values.length).toBeGreaterThan(0);
      }
    }
  });

  test("every panel returns data, or is allow-listed with the reason it cannot here (and then returns none)", async () => {
    const results = new Map<string, boolean>();
    const check = async () => {
      for (const p of panels) {
        if (results.get(p.key)) continue;
        const answers = await Promise.all(p.exprs.map(async (e) => hasData(await queryRange(resolve(e)))));
        results.set(p.key, answers.some(Boolean));
      }
      return panels.every((p) => results.get(p.key) || p.key in allowList) ? true : undefined;
    };
    // Counters and gauges reach Prometheus a scrape (a second) after the load: bounded wait.
    await eventually(check, { what: "every panel not allow-listed to return data", timeoutMs: 20_000, intervalMs: 1_000 }).catch(() => {});
    const empty = panels.filter((p) => !results.get(p.key) && !(p.key in allowList)).map((p) => `${p.key}: ${p.exprs.join(" ; ")}`);
    const dishonest = panels.filter((p) => results.get(p.key) && p.key in allowList).map((p) => p.key);
    const stale = Object.keys(allowList).filter((k) => !panels.some((p) => p.key === k));
    const returning = panels.filter((p) => results.get(p.key)).length;
    process.stdout.write(
      `dashboards: ${dashboards.length}, panels: ${panels.length}, returning data: ${returning}, allow-listed: ${Object.keys(allowList).length}\n`,
    );
    expect(empty, "panels that returned no data and are not allow-listed").toEqual([]);
    expect(dishonest, "allow-listed panels that do return data: take them off the list").toEqual([]);
    expect(stale, "allow-list entries naming no panel").toEqual([]);
    // An allow-listed panel says in its description why it can be empty.
    for (const p of panels) if (p.key in allowList) expect(p.panel.description, p.key).toMatch(/Empty/);
  }, 40_000);
});
