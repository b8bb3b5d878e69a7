/**
 * Builds Bazaar's Grafana dashboards (`deploy/grafana/dashboards/*.json`) from the service
 * catalog, so a new service gets its dashboard and its place on the overview by running
 * `bun run generate:dashboards`; deploy/grafana/dashboards.test.ts fails while the committed
 * JSON is stale, and tests/dashboards.test.ts runs every panel's queries against a real
 * Prometheus scraping a running platform: each returns data, or its description says why not
 * and the test's allow-list names it.
 *
 * Grafana loads the files through file provisioning (provisioning/dashboards/bazaar.yml); the
 * datasource uids are those of provisioning/datasources/datasources.yml.
 */
import { serviceCatalog, type ServiceEntry } from "@bazaar/platform/service-catalog";

/** Datasource uids of provisioning/datasources/datasources.yml. */
export const datasourceUids = { prometheus: "prometheus", jaeger: "jaeger", loki: "loki" } as const;

/**
 * Metrics the dashboards read that no Bazaar process serves: Envoy's (/stats/prometheus of the
 * gateway), RabbitMQ's Prometheus plugin's and the Redis exporter's. The test checks every other
 * metric name a query uses is on some process's /metrics.
 */
export const externalMetrics = {
  envoy: [
    "envoy_http_downstream_rq_xx",
    "envoy_http_downstream_rq_time_bucket",
    "envoy_cluster_upstream_rq_xx",
    "envoy_cluster_upstream_rq_time_bucket",
    "envoy_cluster_upstream_rq_retry",
    "envoy_cluster_membership_healthy",
    "envoy_cluster_outlier_detection_ejections_active",
    "envoy_http_jwt_authn_allowed",
    "envoy_http_jwt_authn_denied",
    "envoy_http_local_rate_limit_rate_limited",
  ],
  rabbitmq: ["rabbitmq_queue_messages_ready", "rabbitmq_queue_messages_unacked", "rabbitmq_connections"],
  redis_exporter: ["redis_up", "redis_connected_clients", "redis_memory_used_bytes", "redis_commands_processed_total"],
} as const;

const prometheus = { type: "prometheus", uid: datasourceUids.prometheus };

/** One query of a panel. */
interface Target {
  expr: string;
  legendFormat: string;
  /** Show exemplars (latency panels: a dot links to the trace in Jaeger). */
  exemplar?: boolean;
}

/** A panel before layout: the generator gives it its id and position. */
interface PanelSpec {
  type: "timeseries" | "stat";
  title: string;
  /** What it shows and how to read it; for a panel that is often empty, when and why. */
  description: string;
  unit: string;
  targets: Target[];
  /** Width in grid columns (of 24); 8 unless given. */
  width?: number;
  /** Stacked series (a breakdown of a whole). */
  stacked?: boolean;
}

const q = (expr: string, legendFormat: string, exemplar = false): Target => ({ expr, legendFormat, ...(exemplar ? { exemplar } : {}) });

/** p50, p95 and p99 of a histogram, summed `by`, with exemplars. */
function quantiles(bucket: string, matchers: string, by: string[], legend: string): Target[] {
  const groups = ["le", ...by].join(", ");
  return [0.5, 0.95, 0.99].map((p) =>
    q(`histogram_quantile(${p}, sum by (${groups}) (rate(${bucket}{${matchers}}[$__rate_interval])))`, `p${p * 100} ${legend}`.trim(), true),
  );
}

/** gRPC codes that mean the server failed (a NOT_FOUND or INVALID_ARGUMENT is the caller's). */
const grpcServerErrorCodes = "UNKNOWN|DEADLINE_EXCEEDED|INTERNAL|UNAVAILABLE|DATA_LOSS|UNIMPLEMENTED";

/**
 * errors / total by `by`, 0 (not empty) while there are no errors: the error series exists only
 * once something failed.
 */
function errorRatio(metric: string, matchers: string, errorMatcher: string, by: string): string {
  const all = `sum by (${by}) (rate(${metric}{${matchers}}[$__rate_interval]))`;
  return `(sum by (${by}) (rate(${metric}{${matchers}, ${errorMatcher}}[$__rate_interval])) or ${all} * 0) / ${all}`;
}

function saturationPanels(sel: string, by: string): PanelSpec[] {
  return [
    {
      type: "timeseries",
      title: "CPU",
      description: "CPU time used per second (1 = one core), from prom-client's process metrics.",
      unit: "percentunit",
      targets: [q(`sum by (${by}) (rate(process_cpu_seconds_total{${sel}}[$__rate_interval]))`, `{{${by}}}`)],
    },
    {
      type: "timeseries",
      title: "Memory (resident)",
      description: "Resident set size of each process.",
      unit: "bytes",
      targets: [q(`sum by (${by}) (process_resident_memory_bytes{${sel}})`, `{{${by}}}`)],
    },
    {
      type: "timeseries",
      title: "Event loop lag p99",
      description: "The 99th percentile of event-loop delay: above a few tens of milliseconds every request waits behind blocking work.",
      unit: "s",
      targets: [q(`max by (${by}) (nodejs_eventloop_lag_p99_seconds{${sel}})`, `{{${by}}}`)],
    },
  ];
}

function poolPanels(sel: string, by: string): PanelSpec[] {
  return [
    {
      type: "timeseries",
      title: "Postgres pool in use",
      description: "Connections of the Postgres pool in use, as a share of the pool's maximum: near 1 requests start queueing for a connection.",
      unit: "percentunit",
      targets: [
        q(
          `sum by (${by}, pool) (db_client_connection_count{${sel}, state="used"}) / sum by (${by}, pool) (db_client_connection_max{${sel}})`,
          `{{${by}}} {{pool}}`,
        ),
      ],
    },
    {
      type: "timeseries",
      title: "Postgres pool waiting",
      description: "Queries waiting for a free connection of the pool: above 0 for long, the pool (or the database) is the bottleneck.",
      unit: "short",
      targets: [q(`sum by (${by}, pool) (db_client_connection_pending_requests{${sel}})`, `{{${by}}} {{pool}}`)],
    },
  ];
}

function grpcServerPanels(sel: string, by: string, title: string): PanelSpec[] {
  return [
    {
      type: "timeseries",
      title: `${title} gRPC request rate`.trim(),
      description: "RPCs completed per second (grpc_server_handled_total).",
      unit: "reqps",
      targets: [q(`sum by (${by}) (rate(grpc_server_handled_total{${sel}}[$__rate_interval]))`, `{{${by}}}`)],
    },
    {
      type: "timeseries",
      title: `${title} gRPC error ratio`.trim(),
      description: `Share of RPCs that ended with a server-side failure (${grpcServerErrorCodes.replaceAll("|", ", ")}); a caller's mistake (NOT_FOUND, INVALID_ARGUMENT …) is not counted. 0 while nothing failed.`,
      unit: "percentunit",
      targets: [q(errorRatio("grpc_server_handled_total", sel, `grpc_code=~"${grpcServerErrorCodes}"`, by), `{{${by}}}`)],
    },
    {
      type: "timeseries",
      title: `${title} gRPC latency`.trim(),
      description: "p50, p95 and p99 of the time to serve an RPC; exemplars link to the trace.",
      unit: "s",
      targets: quantiles("grpc_server_handling_seconds_bucket", sel, [by], `{{${by}}}`),
    },
  ];
}

function httpServerPanels(sel: string, by: string, title: string): PanelSpec[] {
  return [
    {
      type: "timeseries",
      title: `${title} HTTP request rate`.trim(),
      description: "HTTP requests answered per second (http_server_requests_total), /healthz and /metrics included.",
      unit: "reqps",
      targets: [q(`sum by (${by}) (rate(http_server_requests_total{${sel}}[$__rate_interval]))`, `{{${by}}}`)],
    },
    {
      type: "timeseries",
      title: `${title} HTTP 5xx ratio`.trim(),
      description: "Share of HTTP requests answered with a 5xx. 0 while nothing failed.",
      unit: "percentunit",
      targets: [q(errorRatio("http_server_requests_total", sel, `status=~"5.."`, by), `{{${by}}}`)],
    },
    {
      type: "timeseries",
      title: `${title} HTTP latency`.trim(),
      description: "p50, p95 and p99 of the time to answer an HTTP request; exemplars link to the trace.",
      unit: "s",
      targets: quantiles("http_server_request_duration_seconds_bucket", sel, [by], `{{${by}}}`),
    },
  ];
}

/** A Grafana query variable over label values. */
function variable(name: string, label: string, query: string, options: { multi: boolean }): Record<string, unknown> {
  return {
    name,
    label,
    type: "query",
    datasource: prometheus,
    query: { query, refId: `${name}-variable` },
    definition: query,
    refresh: 2,
    sort: 1,
    multi: options.multi,
    includeAll: true,
    // Test-time resolution (tests/dashboards.test.ts) and Grafana agree: All is ".*".
    allValue: ".*",
    current: { selected: true, text: ["All"], value: ["$__all"] },
  };
}

const instanceVariable = (sel: string) => variable("instance", "Instance", `label_values(up{${sel}}, instance)`, { multi: true });

/** Lays panels out left to right, wrapping at 24 columns, and numbers them. */
function layout(specs: PanelSpec[]): Record<string, unknown>[] {
  let x = 0;
  let y = 0;
  return specs.map((spec, i) => {
    const w = spec.width ?? 8;
    const h = spec.type === "stat" ? 5 : 8;
    if (x + w > 24) {
      x = 0;
      y += 8;
    }
    const gridPos = { h, w, x, y };
    x += w;
    return {
      id: i + 1,
      type: spec.type,
      title: spec.title,
      description: spec.description,
      datasource: prometheus,
      gridPos,
      fieldConfig: {
        defaults: {
          unit: spec.unit,
          ...(spec.type === "timeseries"
            ? { custom: { drawStyle: "line", lineWidth: 1, fillOpacity: spec.stacked ? 30 : 5, stacking: { mode: spec.stacked ? "normal" : "none" } } }
            : {}),
        },
        overrides: [],
      },
      options:
        spec.type === "stat"
          ? { reduceOptions: { calcs: ["lastNotNull"], fields: "", values: false }, colorMode: "value", graphMode: "area", textMode: "auto" }
          : { legend: { displayMode: "list", placement: "bottom", showLegend: true }, tooltip: { mode: "multi", sort: "desc" } },
      targets: spec.targets.map((t, j) => ({
        datasource: prometheus,
        refId: String.fromCharCode(65 + j),
        expr: t.expr,
        legendFormat: t.legendFormat,
        range: true,
        ...(t.exemplar ? { exemplar: true } : {}),
      })),
    };
  });
}

/** A whole dashboard. */
function dashboard(uid: string, title: string, description: string, tags: string[], variables: Record<string, unknown>[], specs: PanelSpec[]) {
  return {
    uid,
    title,
    description,
    tags: ["bazaar", ...tags],
    editable: true,
    graphTooltip: 1,
    refresh: "30s",
    schemaVersion: 39,
    time: { from: "now-1h", to: "now" },
    timepicker: {},
    timezone: "browser",
    annotations: { list: [] },
    links: [{ title: "Bazaar", type: "dashboards", tags: ["bazaar"], asDropdown: true, includeVars: false, keepTime: true }],
    templating: { list: variables },
    panels: layout(specs),
    version: 1,
  };
}

const processes = serviceCatalog as readonly ServiceEntry[];
const bazaarJob = `job="bazaar"`;

function overview() {
  const sel = `${bazaarJob}, service=~"$service", instance=~"$instance"`;
  return dashboard(
    "bazaar-overview",
    "Bazaar overview",
    "RED (rate, errors, duration) of every Bazaar process, and its saturation: CPU, memory, event-loop lag, Postgres pool.",
    ["overview"],
    [variable("service", "Service", `label_values(up{${bazaarJob}}, service)`, { multi: true }), instanceVariable(`${bazaarJob}, service=~"$service"`)],
    [
      {
        type: "stat",
        title: "Processes up",
        description: "Scrape targets of each process answering /metrics (Prometheus's up).",
        unit: "short",
        width: 12,
        targets: [q(`sum by (service) (up{${sel}})`, "{{service}}")],
      },
      {
        type: "stat",
        title: "Dependencies up",
        description: "Whether each process's dependencies (postgres, redis) answered its last readiness check; the lowest of its instances.",
        unit: "short",
        width: 12,
        targets: [q(`min by (service, dependency) (bazaar_dependency_up{${sel}})`, "{{service}} {{dependency}}")],
      },
      ...grpcServerPanels(sel, "service", ""),
      ...httpServerPanels(sel, "service", ""),
      ...saturationPanels(sel, "service"),
      ...poolPanels(sel, "service"),
      {
        type: "timeseries",
        title: "Database statements",
        description: "SQL statements sent to Postgres per second, transactions' BEGIN/COMMIT included.",
        unit: "ops",
        targets: [q(`sum by (service) (rate(bazaar_db_queries_total{${sel}}[$__rate_interval]))`, "{{service}}")],
      },
    ],
  );
}

/** Panels of what only one process does, beside its RED and saturation. */
function ownPanels(entry: ServiceEntry, sel: string): PanelSpec[] {
  switch (entry.name) {
    case "identity":
      return [
        {
          type: "timeseries",
          title: "Sign-ins by outcome",
          description: "Password sign-ins per second: ok, wrong_credentials, throttled.",
          unit: "ops",
          stacked: true,
          targets: [q(`sum by (outcome) (rate(bazaar_identity_sign_ins_total{${sel}}[$__rate_interval]))`, "{{outcome}}")],
        },
        {
          type: "timeseries",
          title: "Token endpoint by outcome",
          description: "OAuth token endpoint requests (services' client credentials) per second: issued, or the OAuth error.",
          unit: "ops",
          targets: [q(`sum by (outcome) (rate(bazaar_identity_token_requests_total{${sel}}[$__rate_interval]))`, "{{outcome}}")],
        },
      ];
    case "catalog":
      return cachePanelsOf(sel, "cache");
    case "inventory":
      return [
        {
          type: "timeseries",
          title: "Reservations by outcome",
          description:
            "Stock reservations per second: reserved, out_of_stock, committed, released, expired. Expired ones mean sagas died between reserve and commit.",
          unit: "ops",
          targets: [q(`sum by (outcome) (rate(bazaar_inventory_reservations_total{${sel}}[$__rate_interval]))`, "{{outcome}}")],
        },
      ];
    case "orders":
      return [
        {
          type: "timeseries",
          title: "Saga outcomes",
          description: "Orders reaching a final state per second, by outcome and reason (see the Checkout saga dashboard).",
          unit: "ops",
          targets: [q(`sum by (outcome, reason) (rate(bazaar_saga_outcomes_total{${sel}}[$__rate_interval]))`, "{{outcome}} {{reason}}")],
        },
      ];
    case "payments":
      return [
        {
          type: "timeseries",
          title: "Card processor calls",
          description: "Calls to the (simulated) card processor per second, by operation and outcome.",
          unit: "ops",
          targets: [q(`sum by (operation, outcome) (rate(bazaar_payments_processor_calls_total{${sel}}[$__rate_interval]))`, "{{operation}} {{outcome}}")],
        },
      ];
    case "bff":
      return [
        {
          type: "timeseries",
          title: "Live order streams open",
          description: "Open /api/events streams (live order status).",
          unit: "short",
          targets: [q(`sum by (instance) (bff_event_streams_open{${sel}})`, "{{instance}}")],
        },
        ...cachePanelsOf(sel, "cache"),
      ];
    default:
      return [];
  }
}

/** Whether the process calls others over gRPC (identity only for its JWKS, over HTTP, does not count). */
const callsOverGrpc = (entry: ServiceEntry) => (entry.calls ?? []).some((c) => c !== "identity") || entry.name === "bff";

function servicePanels(entry: ServiceEntry): PanelSpec[] {
  const sel = `${bazaarJob}, service="${entry.name}", instance=~"$instance"`;
  const specs: PanelSpec[] = [];
  if (entry.grpcPort !== undefined) {
    specs.push(
      {
        type: "timeseries",
        title: "gRPC requests by method",
        description: "RPCs served per second, by method.",
        unit: "reqps",
        targets: [q(`sum by (grpc_method) (rate(grpc_server_handled_total{${sel}}[$__rate_interval]))`, "{{grpc_method}}")],
      },
      {
        type: "timeseries",
        title: "gRPC responses by code",
        description:
          "RPCs served per second, by final status code: NOT_FOUND and INVALID_ARGUMENT are callers' mistakes, UNAVAILABLE and INTERNAL the service's.",
        unit: "reqps",
        stacked: true,
        targets: [q(`sum by (grpc_code) (rate(grpc_server_handled_total{${sel}}[$__rate_interval]))`, "{{grpc_code}}")],
      },
      {
        type: "timeseries",
        title: "gRPC latency",
        description: "p50, p95 and p99 of the time to serve an RPC, all methods; exemplars link to the trace.",
        unit: "s",
        targets: quantiles("grpc_server_handling_seconds_bucket", sel, [], ""),
      },
      {
        type: "timeseries",
        title: "gRPC p95 by method",
        description: "p95 of the time to serve each method; exemplars link to the trace.",
        unit: "s",
        targets: [
          q(
            `histogram_quantile(0.95, sum by (le, grpc_method) (rate(grpc_server_handling_seconds_bucket{${sel}}[$__rate_interval])))`,
            "{{grpc_method}}",
            true,
          ),
        ],
      },
    );
  }
  specs.push(
    {
      type: "timeseries",
      title: "HTTP requests by route",
      description:
        entry.grpcPort !== undefined ? "HTTP requests per second by route: /healthz, /metrics and the extras." : "HTTP requests per second by route.",
      unit: "reqps",
      targets: [q(`sum by (method, route) (rate(http_server_requests_total{${sel}}[$__rate_interval]))`, "{{method}} {{route}}")],
    },
    {
      type: "timeseries",
      title: "HTTP latency",
      description: "p50, p95 and p99 of the time to answer an HTTP request; exemplars link to the trace.",
      unit: "s",
      targets: quantiles("http_server_request_duration_seconds_bucket", sel, [], ""),
    },
  );
  if (callsOverGrpc(entry)) {
    // Its only calls are the catalog backfill's, once at start (services/inventory/src/catalog-backfill.ts).
    const onlyAtStart = entry.name === "inventory" ? " Empty after start: inventory calls catalog only to backfill its stock rows, once." : "";
    specs.push(
      {
        type: "timeseries",
        title: "Outgoing calls by service and code",
        description: `RPCs this process made per second, by callee and final status code.${onlyAtStart}`,
        unit: "reqps",
        targets: [q(`sum by (grpc_service, grpc_code) (rate(grpc_client_handled_total{${sel}}[$__rate_interval]))`, "{{grpc_service}} {{grpc_code}}")],
      },
      {
        type: "timeseries",
        title: "Outgoing calls p95",
        description: `p95 of the time the callee took to answer, by callee; exemplars link to the trace.${onlyAtStart}`,
        unit: "s",
        targets: [
          q(
            `histogram_quantile(0.95, sum by (le, grpc_service) (rate(grpc_client_handling_seconds_bucket{${sel}}[$__rate_interval])))`,
            "{{grpc_service}}",
            true,
          ),
        ],
      },
    );
  }
  if (entry.database !== undefined) {
    specs.push(...poolPanels(sel, "instance"), {
      type: "timeseries",
      title: "Database statements",
      description: "SQL statements sent to Postgres per second, transactions' BEGIN/COMMIT included.",
      unit: "ops",
      targets: [q(`sum by (instance) (rate(bazaar_db_queries_total{${sel}}[$__rate_interval]))`, "{{instance}}")],
    });
  }
  if (entry.messaging && entry.name === "orders") {
    specs.push(...outboxPanels(sel, "instance"));
  }
  specs.push(...ownPanels(entry, sel), ...saturationPanels(sel, "instance"));
  return specs;
}

function serviceDashboard(entry: ServiceEntry) {
  const kind = entry.grpcPort !== undefined ? "service" : "backend for frontend";
  return dashboard(
    `bazaar-${entry.name}`,
    `Bazaar ${entry.name}`,
    `The ${entry.name} ${kind}: what it serves, what it calls, what it holds, and its saturation.`,
    ["service", entry.name],
    [instanceVariable(`${bazaarJob}, service="${entry.name}"`)],
    servicePanels(entry),
  );
}

function checkoutSaga() {
  const sel = `${bazaarJob}, service="orders", instance=~"$instance"`;
  return dashboard(
    "bazaar-checkout-saga",
    "Bazaar checkout saga",
    "PlaceOrder's saga, orchestrated by orders: placed → stock reserved → charged → reservation committed → CONFIRMED, or compensated and CANCELLED with a reason.",
    ["saga", "orders"],
    [instanceVariable(`${bazaarJob}, service="orders"`)],
    [
      {
        type: "stat",
        title: "Orders placed",
        description: "Orders accepted by PlaceOrder in the time range (an idempotent retry is not a new order).",
        unit: "short",
        width: 6,
        targets: [q(`sum(increase(bazaar_orders_placed_total{${sel}}[$__range]))`, "placed")],
      },
      {
        type: "stat",
        title: "Confirmed share",
        description: "Share of sagas that ended CONFIRMED in the time range.",
        unit: "percentunit",
        width: 6,
        targets: [
          q(
            `sum(increase(bazaar_saga_outcomes_total{${sel}, outcome="confirmed"}[$__range])) / sum(increase(bazaar_saga_outcomes_total{${sel}}[$__range]))`,
            "confirmed",
          ),
        ],
      },
      {
        type: "stat",
        title: "Sagas in flight",
        description: "Orders placed and not yet final.",
        unit: "short",
        width: 6,
        targets: [q(`sum(bazaar_sagas_in_flight{${sel}})`, "in flight")],
      },
      {
        type: "stat",
        title: "Oldest saga in flight",
        description: "Age of the oldest saga not yet final: a stuck saga shows here long before its reservation expires.",
        unit: "s",
        width: 6,
        targets: [q(`max(bazaar_saga_oldest_in_flight_seconds{${sel}})`, "oldest")],
      },
      {
        type: "timeseries",
        title: "Funnel: steps completed",
        description:
          "Saga steps completed per second, by step and outcome: placed orders should flow through each step; a step whose rate falls below the one before loses orders.",
        unit: "ops",
        width: 12,
        targets: [
          q(`sum(rate(bazaar_orders_placed_total{${sel}}[$__rate_interval]))`, "placed"),
          q(`sum by (step, outcome) (rate(bazaar_saga_step_duration_seconds_count{${sel}}[$__rate_interval]))`, "{{step}} {{outcome}}"),
        ],
      },
      {
        type: "timeseries",
        title: "Outcomes by reason",
        description: "Sagas ending per second: confirmed, or cancelled by reason (out_of_stock, payment_declined …).",
        unit: "ops",
        width: 12,
        stacked: true,
        targets: [q(`sum by (outcome, reason) (rate(bazaar_saga_outcomes_total{${sel}}[$__rate_interval]))`, "{{outcome}} {{reason}}")],
      },
      {
        type: "timeseries",
        title: "Step duration p95",
        description: "p95 of each step's duration (reserve, charge, commit, and compensations); exemplars link to the trace.",
        unit: "s",
        targets: [
          q(`histogram_quantile(0.95, sum by (le, step) (rate(bazaar_saga_step_duration_seconds_bucket{${sel}}[$__rate_interval])))`, "{{step}}", true),
        ],
      },
      {
        type: "timeseries",
        title: "Saga duration",
        description: "p50, p95 and p99 of the time from PlaceOrder to the final state, by outcome; exemplars link to the trace.",
        unit: "s",
        targets: quantiles("bazaar_saga_duration_seconds_bucket", sel, ["outcome"], "{{outcome}}"),
      },
      {
        type: "timeseries",
        title: "Step retries",
        description: "Steps that failed in a way that may pass (a peer UNAVAILABLE) and were scheduled again, by step. Empty while no step had to be retried.",
        unit: "ops",
        targets: [q(`sum by (step) (rate(bazaar_saga_step_retries_total{${sel}}[$__rate_interval]))`, "{{step}}")],
      },
      {
        type: "timeseries",
        title: "Cancelled by reason",
        description: "Orders cancelled in the time range, by reason.",
        unit: "short",
        width: 12,
        targets: [q(`sum by (reason) (increase(bazaar_saga_outcomes_total{${sel}, outcome="cancelled"}[$__range]))`, "{{reason}}")],
      },
      {
        type: "timeseries",
        title: "Reservations by outcome",
        description: "inventory's side of the saga: reservations per second by outcome (reserved, out_of_stock, committed, released, expired).",
        unit: "ops",
        width: 12,
        targets: [q(`sum by (outcome) (rate(bazaar_inventory_reservations_total{${bazaarJob}, service="inventory"}[$__rate_interval]))`, "{{outcome}}")],
      },
    ],
  );
}

function outboxPanels(sel: string, by: string): PanelSpec[] {
  return [
    {
      type: "timeseries",
      title: "Outbox pending",
      description: "Outbox rows not yet confirmed by the broker: events waiting to be published.",
      unit: "short",
      targets: [q(`sum by (${by}) (bazaar_outbox_pending_messages{${sel}})`, `{{${by}}}`)],
    },
    {
      type: "timeseries",
      title: "Outbox lag",
      description: "Age of the oldest outbox row not yet confirmed (0 when none): how late events are.",
      unit: "s",
      targets: [q(`max by (${by}) (bazaar_outbox_lag_seconds{${sel}})`, `{{${by}}}`)],
    },
  ];
}

function messaging() {
  const sel = `${bazaarJob}, service=~"$service", instance=~"$instance"`;
  return dashboard(
    "bazaar-messaging",
    "Bazaar messaging",
    "Events through RabbitMQ: the outbox of each producer, publishes with confirms, each consumer's queue, outcomes, handling time, retries and dead letters.",
    ["messaging"],
    [variable("service", "Service", `label_values(up{${bazaarJob}}, service)`, { multi: true }), instanceVariable(`${bazaarJob}, service=~"$service"`)],
    [
      ...outboxPanels(sel, "service"),
      {
        type: "timeseries",
        title: "Published by routing key",
        description: "Events published per second, by routing key and outcome (acked by the broker, or failed).",
        unit: "ops",
        targets: [q(`sum by (routing_key, outcome) (rate(bazaar_messages_published_total{${sel}}[$__rate_interval]))`, "{{routing_key}} {{outcome}}")],
      },
      {
        type: "timeseries",
        title: "Consumed by queue and outcome",
        description: "Deliveries handled per second, by queue and outcome (processed, duplicate, retried, dead_lettered).",
        unit: "ops",
        width: 12,
        targets: [q(`sum by (queue, outcome) (rate(bazaar_messages_consumed_total{${sel}}[$__rate_interval]))`, "{{queue}} {{outcome}}")],
      },
      {
        type: "timeseries",
        title: "Handling time p95",
        description: "p95 of the time a consumer's handler took, by queue; exemplars link to the trace.",
        unit: "s",
        width: 12,
        targets: [
          q(`histogram_quantile(0.95, sum by (le, queue) (rate(bazaar_message_handling_seconds_bucket{${sel}}[$__rate_interval])))`, "{{queue}}", true),
        ],
      },
      {
        type: "timeseries",
        title: "Queue depth",
        description: "Messages ready in each consumer's queue (the consumer's own reading of the broker): a growing queue means the consumer cannot keep up.",
        unit: "short",
        targets: [q(`max by (queue) (bazaar_queue_messages{${sel}})`, "{{queue}}")],
      },
      {
        type: "timeseries",
        title: "Queue consumers",
        description: "Consumers attached to each queue: 0 means nobody handles its events.",
        unit: "short",
        targets: [q(`max by (queue) (bazaar_queue_consumers{${sel}})`, "{{queue}}")],
      },
      {
        type: "timeseries",
        title: "Dead-letter queues",
        description: "Messages waiting in each dead-letter queue: poison or unhandled messages for a person to look at (bun run dlq:replay).",
        unit: "short",
        targets: [q(`max by (queue) (bazaar_dlq_messages{${sel}})`, "{{queue}}")],
      },
      {
        type: "timeseries",
        title: "Dead-lettered by reason",
        description: "Messages a consumer sent to its dead-letter queue per second, by queue and reason (poison, malformed, no_handler, retries_exhausted).",
        unit: "ops",
        targets: [q(`sum by (queue, reason) (rate(bazaar_messages_dead_lettered_total{${sel}}[$__rate_interval]))`, "{{queue}} {{reason}}")],
      },
      {
        type: "timeseries",
        title: "Redelivered",
        description: "Failed deliveries sent to a retry queue per second, by queue. Empty while no handler has failed.",
        unit: "ops",
        targets: [q(`sum by (queue) (rate(bazaar_messages_redelivered_total{${sel}}[$__rate_interval]))`, "{{queue}}")],
      },
      {
        type: "timeseries",
        title: "RabbitMQ messages ready and unacked",
        description:
          "The broker's own count (RabbitMQ's Prometheus plugin, rabbitmq:15692), all queues: ready to deliver, and delivered not yet acknowledged. Empty where the plugin is not scraped.",
        unit: "short",
        targets: [q(`sum(rabbitmq_queue_messages_ready)`, "ready"), q(`sum(rabbitmq_queue_messages_unacked)`, "unacked")],
      },
      {
        type: "timeseries",
        title: "RabbitMQ connections",
        description: "Client connections open on the broker (RabbitMQ's Prometheus plugin). Empty where the plugin is not scraped.",
        unit: "short",
        targets: [q(`sum(rabbitmq_connections)`, "connections")],
      },
    ],
  );
}

function cachePanelsOf(sel: string, by: string): PanelSpec[] {
  return [
    {
      type: "timeseries",
      title: "Cache hit ratio",
      description: "Share of look-ups answered from Redis, by cache: hit / (hit + miss + bypassed).",
      unit: "percentunit",
      targets: [
        q(
          `sum by (${by}) (rate(bazaar_cache_requests_total{${sel}, result="hit"}[$__rate_interval])) / sum by (${by}) (rate(bazaar_cache_requests_total{${sel}}[$__rate_interval]))`,
          `{{${by}}}`,
        ),
      ],
    },
    {
      type: "timeseries",
      title: "Cache look-ups by result",
      description: "Look-ups per second by cache and result: hit, miss (read from the source), bypassed (the circuit was open).",
      unit: "ops",
      stacked: true,
      targets: [q(`sum by (${by}, result) (rate(bazaar_cache_requests_total{${sel}}[$__rate_interval]))`, `{{${by}}} {{result}}`)],
    },
  ];
}

function cache() {
  const sel = `${bazaarJob}, service=~"$service", instance=~"$instance"`;
  return dashboard(
    "bazaar-cache",
    "Bazaar cache",
    "Cache-aside reads in Redis (catalog's products, the BFF's page models and cart counts): hit ratio, failed commands, open circuits, and Redis itself.",
    ["cache", "redis"],
    [
      variable("service", "Service", `label_values(bazaar_cache_requests_total{${bazaarJob}}, service)`, { multi: true }),
      instanceVariable(`${bazaarJob}, service=~"$service"`),
    ],
    [
      ...cachePanelsOf(sel, "cache"),
      {
        type: "timeseries",
        title: "Circuit open",
        description: "1 while a cache's circuit breaker is open: Redis failed or hung, and reads go to the source.",
        unit: "short",
        targets: [q(`max by (cache) (bazaar_cache_circuit_open{${sel}})`, "{{cache}}")],
      },
      {
        type: "timeseries",
        title: "Failed cache commands",
        description:
          "Redis commands of a cache that did not happen, by cache, operation and reason (timeout, error, bypassed). Empty while Redis answers every command; a lost invalidation leaves an entry stale until its TTL.",
        unit: "ops",
        width: 12,
        targets: [
          q(`sum by (cache, operation, reason) (rate(bazaar_cache_command_failures_total{${sel}}[$__rate_interval]))`, "{{cache}} {{operation}} {{reason}}"),
        ],
      },
      {
        type: "stat",
        title: "Redis up",
        description: "Whether the Redis exporter reaches Redis (redis_exporter). Empty where the exporter is not scraped.",
        unit: "short",
        width: 4,
        targets: [q("max(redis_up)", "up")],
      },
      {
        type: "stat",
        title: "Redis clients",
        description: "Client connections open on Redis (redis_exporter). Empty where the exporter is not scraped.",
        unit: "short",
        width: 4,
        targets: [q("sum(redis_connected_clients)", "clients")],
      },
      {
        type: "timeseries",
        title: "Redis memory",
        description: "Memory Redis uses (redis_exporter). Empty where the exporter is not scraped.",
        unit: "bytes",
        width: 12,
        targets: [q("sum(redis_memory_used_bytes)", "used")],
      },
      {
        type: "timeseries",
        title: "Redis commands",
        description: "Commands Redis processed per second, every client's (redis_exporter). Empty where the exporter is not scraped.",
        unit: "ops",
        width: 12,
        targets: [q("sum(rate(redis_commands_processed_total[$__rate_interval]))", "commands")],
      },
    ],
  );
}

function gateway() {
  const envoy = `job="gateway"`;
  const notInTests = "Empty where the gateway is not scraped (Envoy's /stats/prometheus).";
  return dashboard(
    "bazaar-gateway",
    "Bazaar gateway",
    "The Envoy gateway, the one entry from outside: requests by status class, upstream clusters, JWT checks and local rate limits.",
    ["gateway", "envoy"],
    [],
    [
      {
        type: "timeseries",
        title: "Downstream requests by class",
        description: `Requests answered to clients per second, by status class (2xx, 4xx, 5xx). ${notInTests}`,
        unit: "reqps",
        stacked: true,
        targets: [q(`sum by (envoy_response_code_class) (rate(envoy_http_downstream_rq_xx{${envoy}}[$__rate_interval]))`, "{{envoy_response_code_class}}xx")],
      },
      {
        type: "timeseries",
        title: "Downstream 5xx ratio",
        description: `Share of client requests answered with a 5xx. ${notInTests}`,
        unit: "percentunit",
        targets: [
          q(
            `sum(rate(envoy_http_downstream_rq_xx{${envoy}, envoy_response_code_class="5"}[$__rate_interval])) / sum(rate(envoy_http_downstream_rq_xx{${envoy}}[$__rate_interval]))`,
            "5xx",
          ),
        ],
      },
      {
        type: "timeseries",
        title: "Downstream latency",
        description: `p50, p95 and p99 of the time to answer a client (Envoy's histograms are in milliseconds). ${notInTests}`,
        unit: "ms",
        targets: [0.5, 0.95, 0.99].map((p) =>
          q(`histogram_quantile(${p}, sum by (le) (rate(envoy_http_downstream_rq_time_bucket{${envoy}}[$__rate_interval])))`, `p${p * 100}`, true),
        ),
      },
      {
        type: "timeseries",
        title: "Upstream requests by cluster and class",
        description: `Requests sent to each service (cluster) per second, by status class. ${notInTests}`,
        unit: "reqps",
        width: 12,
        targets: [
          q(
            `sum by (envoy_cluster_name, envoy_response_code_class) (rate(envoy_cluster_upstream_rq_xx{${envoy}}[$__rate_interval]))`,
            "{{envoy_cluster_name}} {{envoy_response_code_class}}xx",
          ),
        ],
      },
      {
        type: "timeseries",
        title: "Upstream p95 by cluster",
        description: `p95 of each service's answer time as the gateway sees it, in milliseconds. ${notInTests}`,
        unit: "ms",
        width: 12,
        targets: [
          q(
            `histogram_quantile(0.95, sum by (le, envoy_cluster_name) (rate(envoy_cluster_upstream_rq_time_bucket{${envoy}}[$__rate_interval])))`,
            "{{envoy_cluster_name}}",
            true,
          ),
        ],
      },
      {
        type: "timeseries",
        title: "Upstream retries",
        description: `Reads the gateway retried per second, by cluster. ${notInTests}`,
        unit: "ops",
        targets: [q(`sum by (envoy_cluster_name) (rate(envoy_cluster_upstream_rq_retry{${envoy}}[$__rate_interval]))`, "{{envoy_cluster_name}}")],
      },
      {
        type: "timeseries",
        title: "Healthy upstream members",
        description: `Endpoints of each cluster passing the active health check. ${notInTests}`,
        unit: "short",
        targets: [q(`sum by (envoy_cluster_name) (envoy_cluster_membership_healthy{${envoy}})`, "{{envoy_cluster_name}}")],
      },
      {
        type: "timeseries",
        title: "Outlier ejections",
        description: `Endpoints ejected by outlier detection now, by cluster. ${notInTests}`,
        unit: "short",
        targets: [q(`sum by (envoy_cluster_name) (envoy_cluster_outlier_detection_ejections_active{${envoy}})`, "{{envoy_cluster_name}}")],
      },
      {
        type: "timeseries",
        title: "JWT checks",
        description: `Tokens the gateway's jwt_authn filter allowed and denied per second. ${notInTests}`,
        unit: "ops",
        width: 12,
        targets: [
          q(`sum(rate(envoy_http_jwt_authn_allowed{${envoy}}[$__rate_interval]))`, "allowed"),
          q(`sum(rate(envoy_http_jwt_authn_denied{${envoy}}[$__rate_interval]))`, "denied"),
        ],
      },
      {
        type: "timeseries",
        title: "Rate limited",
        description: `Requests refused by a local rate limit per second, by limit (gateway, sign-in, sign-up, checkout …). ${notInTests}`,
        unit: "reqps",
        width: 12,
        targets: [
          q(
            `sum by (envoy_local_http_ratelimit_prefix) (rate(envoy_http_local_rate_limit_rate_limited{${envoy}}[$__rate_interval]))`,
            "{{envoy_local_http_ratelimit_prefix}}",
          ),
        ],
      },
    ],
  );
}

/** Every dashboard, by file name under deploy/grafana/dashboards/. */
export function dashboards(): Record<string, ReturnType<typeof dashboard>> {
  const files: Record<string, ReturnType<typeof dashboard>> = {
    "overview.json": overview(),
    "checkout-saga.json": checkoutSaga(),
    "messaging.json": messaging(),
    "cache.json": cache(),
    "gateway.json": gateway(),
  };
  for (const entry of processes) files[`service-${entry.name}.json`] = serviceDashboard(entry);
  return files;
}

/** A dashboard's file text. */
export const dashboardText = (d: unknown): string => `${JSON.stringify(d, null, 2)}\n`;

/** Where the dashboards live. */
export const dashboardsDir = new URL("./dashboards/", import.meta.url).pathname;

if (import.meta.main) {
  const { mkdirSync, readdirSync, rmSync } = await import("node:fs");
  mkdirSync(dashboardsDir, { recursive: true });
  const files = dashboards();
  // A dashboard of a process no longer in the catalog goes with it.
  for (const name of readdirSync(dashboardsDir)) if (name.endsWith(".json") && !(name in files)) rmSync(`${dashboardsDir}${name}`);
  for (const [name, d] of Object.entries(files)) await Bun.write(`${dashboardsDir}${name}`, dashboardText(d));
  process.stdout.write(`wrote ${Object.keys(files).length} dashboards to ${dashboardsDir}\n`);
}
