import { type Span, TraceFlags, trace } from "@opentelemetry/api";
import { withinTime } from "./time-limit.ts";
import { collectDefaultMetrics, Counter, Gauge, Histogram, type LabelValues, type OpenMetricsContentType, Registry } from "prom-client";

/**
 * Prometheus metrics of one process, served as text on `/metrics`. Names follow the
 * conventions of go-grpc-prometheus (`grpc_server_handled_total` …) and OpenTelemetry's HTTP
 * semantic conventions, so stock dashboards and alert rules fit.
 */
export const registry = new Registry<OpenMetricsContentType>();
registry.setContentType(Registry.OPENMETRICS_CONTENT_TYPE);

/**
 * Records a duration in a latency histogram with the trace id of `span` (the active span when
 * not given) as the bucket's exemplar, when that span is sampled: a slow bucket on a dashboard
 * then links to a trace in Jaeger. Exemplars are exposed in the OpenMetrics format only, which
 * is why the registry speaks it (Prometheus asks for it; `--enable-feature=exemplar-storage`).
 */
export function observeLatency<T extends string>(histogram: Histogram<T>, labels: LabelValues<T>, seconds: number, span?: Span): void {
  const context = (span ?? trace.getActiveSpan())?.spanContext();
  if (context && context.traceFlags & TraceFlags.SAMPLED)
    histogram.observe({ labels, value: seconds, exemplarLabels: { trace_id: context.traceId } as LabelValues<T> });
  else histogram.observe({ labels, value: seconds });
}

/** Labels every series of this process with its service name and starts process metrics. */
export function configureMetrics(service: string): void {
  registry.setDefaultLabels({ service });
  collectDefaultMetrics({ register: registry });
}

const rpcBuckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** RPCs this process served, by method and final status code. */
export const grpcServerHandled = new Counter({
  name: "grpc_server_handled_total",
  help: "RPCs completed on the server, by method and gRPC status code.",
  labelNames: ["grpc_service", "grpc_method", "grpc_type", "grpc_code"] as const,
  registers: [registry],
});

/** RPCs being served right now (what a draining replica still has to finish), by method. */
export const grpcServerInFlight = new Gauge({
  name: "grpc_server_calls_in_flight",
  help: "RPCs this server has started and not yet answered, by method.",
  labelNames: ["grpc_service", "grpc_method"] as const,
  registers: [registry],
});

/** How long served RPCs took. */
export const grpcServerDuration = new Histogram({
  name: "grpc_server_handling_seconds",
  help: "Time from receiving an RPC to sending its status, by method and gRPC status code.",
  labelNames: ["grpc_service", "grpc_method", "grpc_type", "grpc_code"] as const,
  buckets: rpcBuckets,
  enableExemplars: true,
  registers: [registry],
});

/** RPCs this process made, by method and final status code. */
export const grpcClientHandled = new Counter({
  name: "grpc_client_handled_total",
  help: "RPCs completed by this process as a client, by method and gRPC status code.",
  labelNames: ["grpc_service", "grpc_method", "grpc_code"] as const,
  registers: [registry],
});

/** How long RPCs this process made took. */
export const grpcClientRetries = new Counter({
  name: "grpc_client_retries_total",
  help: "Attempts of RPCs this process repeated after an UNAVAILABLE (only methods the proto declares idempotent are repeated), by method.",
  labelNames: ["grpc_service", "grpc_method"] as const,
  registers: [registry],
});

export const grpcClientDuration = new Histogram({
  name: "grpc_client_handling_seconds",
  help: "Time from starting an RPC to receiving its status, by method and gRPC status code.",
  labelNames: ["grpc_service", "grpc_method", "grpc_code"] as const,
  buckets: rpcBuckets,
  enableExemplars: true,
  registers: [registry],
});

/** HTTP requests served, by route template and status. */
export const httpServerRequests = new Counter({
  name: "http_server_requests_total",
  help: "HTTP requests served, by method, route template and status code.",
  labelNames: ["method", "route", "status"] as const,
  registers: [registry],
});

/** How long served HTTP requests took. */
export const httpServerDuration = new Histogram({
  name: "http_server_request_duration_seconds",
  help: "Time to answer an HTTP request, by method, route template and status code.",
  labelNames: ["method", "route", "status"] as const,
  buckets: rpcBuckets,
  enableExemplars: true,
  registers: [registry],
});

/** Cache look-ups, by cache and result (hit, miss, or bypassed while the cache's circuit was open). */
export const cacheRequests = new Counter({
  name: "bazaar_cache_requests_total",
  help: "Cache look-ups by cache name and result: hit, miss (read from the source, also when Redis failed or was too slow), or bypassed (the circuit was open: Redis was not asked); hit ratio = hit / sum.",
  labelNames: ["cache", "result"] as const,
  registers: [registry],
});

/** Redis commands of a cache that did not work, by operation and reason. */
export const cacheCommandFailures = new Counter({
  name: "bazaar_cache_command_failures_total",
  help: "Cache commands that did not happen, by cache, operation (read, write, invalidate) and reason (timeout, error, or bypassed: skipped while the circuit was open). A lost invalidation leaves an entry stale until its TTL.",
  labelNames: ["cache", "operation", "reason"] as const,
  registers: [registry],
});

/** Whether a cache's circuit breaker is open (the cache bypassed), 1 or 0. */
export const cacheCircuitOpen = new Gauge({
  name: "bazaar_cache_circuit_open",
  help: "Whether a cache's circuit breaker is open (1: Redis failed or hung and the cache is bypassed, reads go to the source) or not (0).",
  labelNames: ["cache"] as const,
  registers: [registry],
});

/** Messages published, by routing key and outcome (acked by the broker, or failed). */
export const messagesPublished = new Counter({
  name: "bazaar_messages_published_total",
  help: "Messages published to RabbitMQ with confirms, by routing key and outcome (acked, failed).",
  labelNames: ["routing_key", "outcome"] as const,
  registers: [registry],
});

/** Messages consumed, by queue, routing key and outcome. */
export const messagesConsumed = new Counter({
  name: "bazaar_messages_consumed_total",
  help: "Messages consumed, by queue, routing key and outcome (processed, duplicate, retried, dead_lettered).",
  labelNames: ["queue", "routing_key", "outcome"] as const,
  registers: [registry],
});

/** Messages sent to a dead-letter queue by a consumer, by queue and reason. */
export const messagesDeadLettered = new Counter({
  name: "bazaar_messages_dead_lettered_total",
  help: "Messages a durable consumer sent to its dead-letter queue, by queue and reason (poison, malformed, no_handler, retries_exhausted).",
  labelNames: ["queue", "reason"] as const,
  registers: [registry],
});

/** Failed deliveries scheduled for a delayed retry, by queue. */
export const messagesRedelivered = new Counter({
  name: "bazaar_messages_redelivered_total",
  help: "Deliveries whose handler failed and that were sent to a retry queue to be delivered again after a delay, by queue.",
  labelNames: ["queue"] as const,
  registers: [registry],
});

/**
 * SQL statements a service sent to its database, by database: every query, plus the BEGIN and
 * COMMIT (or ROLLBACK) of each transaction and the SAVEPOINT and RELEASE of each savepoint,
 * so statements per request can be read next to Postgres's own commit counts.
 */
export const dbQueries = new Counter({
  name: "bazaar_db_queries_total",
  help: "SQL statements sent to Postgres, by database: queries, plus BEGIN/COMMIT (or ROLLBACK) of each transaction and SAVEPOINT/RELEASE of each savepoint.",
  labelNames: ["database"] as const,
  registers: [registry],
});

/** How long a consumer's handler took per delivery, by queue, routing key and outcome. */
export const messageHandling = new Histogram({
  name: "bazaar_message_handling_seconds",
  help: "Time a durable or fan-out consumer spent on one delivery, from receipt to its settlement, by queue, routing key and outcome (processed, duplicate, retried, dead_lettered, dropped).",
  labelNames: ["queue", "routing_key", "outcome"] as const,
  buckets: rpcBuckets,
  enableExemplars: true,
  registers: [registry],
});

/** The depth of one durable consumer's queues, as the broker reports them. */
export interface QueueDepth {
  /** The consumer's queue label (as in `bazaar_messages_consumed_total`). */
  queue: string;
  /** Ready messages in its work queue. */
  messages: number;
  /** Consumers on its work queue, this process's included. */
  consumers: number;
  /** Messages waiting in its dead-letter queue. */
  deadLettered: number;
}

/**
 * A reading that several gauges take at scrape time from one source (the broker, a database):
 * the gauges of one scrape are collected at once and share one read, which may take at most
 * 1 s so that a scrape never hangs; while a read fails or is late, the last good reading stands
 * (none before the first). Until `from` names a source there is nothing to read.
 */
export class ScrapeReading<T> {
  private source: (() => Promise<T>) | undefined;
  private last: T | undefined;
  private pending: Promise<T | undefined> | undefined;

  /** Reads from `read` from now on. */
  from(read: () => Promise<T>): void {
    this.source = read;
  }

  /** The reading of this scrape. */
  get(): Promise<T | undefined> {
    const source = this.source;
    if (!source) return Promise.resolve(this.last);
    this.pending ??= withinTime(source(), 1_000, () => new Error("a scrape-time reading took over 1 s"))
      .then(
        (value) => (this.last = value),
        () => this.last,
      )
      .finally(() => (this.pending = undefined));
    return this.pending;
  }
}

/** The queue gauges' reading: the broker of this process gives it once it consumes. */
export const queueDepths = new ScrapeReading<QueueDepth[]>();

/** Messages in each durable consumer's dead-letter queue (`<queue>.dlq`). */
export const dlqMessages = new Gauge({
  name: "bazaar_dlq_messages",
  help: "Messages waiting in the dead-letter queue of each durable consumer of this process, read from the broker at scrape time (the last value read while the broker cannot be asked).",
  labelNames: ["queue"] as const,
  registers: [registry],
  async collect() {
    for (const d of (await queueDepths.get()) ?? []) this.set({ queue: d.queue }, d.deadLettered);
  },
});

/** Ready messages in each durable consumer's work queue. */
export const queueMessages = new Gauge({
  name: "bazaar_queue_messages",
  help: "Ready messages in the work queue of each durable consumer of this process, read from the broker at scrape time (the last value read while the broker cannot be asked).",
  labelNames: ["queue"] as const,
  registers: [registry],
  async collect() {
    for (const d of (await queueDepths.get()) ?? []) this.set({ queue: d.queue }, d.messages);
  },
});

/** Consumers on each durable consumer's work queue. */
export const queueConsumers = new Gauge({
  name: "bazaar_queue_consumers",
  help: "Consumers on the work queue of each durable consumer of this process (every replica's), read from the broker at scrape time (the last value read while the broker cannot be asked).",
  labelNames: ["queue"] as const,
  registers: [registry],
  async collect() {
    for (const d of (await queueDepths.get()) ?? []) this.set({ queue: d.queue }, d.consumers);
  },
});

/** The connection pool of one database, as the chassis's wrapper sees it. */
export interface PoolUse {
  /** Connections running a query or holding a transaction. */
  used: number;
  /** Queries and transactions waiting for a connection. */
  pending: number;
  /** The pool's size. */
  max: number;
}

const poolSources = new Map<string, () => PoolUse>();

/** Makes `read` the source of the pool gauges of database `pool`. */
export function observePool(pool: string, read: () => PoolUse): void {
  poolSources.set(pool, read);
}

/** Connections of each database pool in use (OpenTelemetry's db.client.connection.count). */
export const dbPoolConnections = new Gauge({
  name: "db_client_connection_count",
  help: "Connections of a database pool in use (state=used: running a query or holding a transaction), counted by the chassis's postgres.js wrapper; idle connections are not counted (postgres.js does not expose them).",
  labelNames: ["pool", "state"] as const,
  registers: [registry],
  collect() {
    for (const [pool, read] of poolSources) this.set({ pool, state: "used" }, read().used);
  },
});

/** Queries and transactions waiting for a connection of each pool. */
export const dbPoolPending = new Gauge({
  name: "db_client_connection_pending_requests",
  help: "Queries and transactions of a database pool waiting for a connection (issued beyond the pool's size), counted by the chassis's postgres.js wrapper.",
  labelNames: ["pool"] as const,
  registers: [registry],
  collect() {
    for (const [pool, read] of poolSources) this.set({ pool }, read().pending);
  },
});

/** The size of each database pool. */
export const dbPoolMax = new Gauge({
  name: "db_client_connection_max",
  help: "The most connections a database pool opens.",
  labelNames: ["pool"] as const,
  registers: [registry],
  collect() {
    for (const [pool, read] of poolSources) this.set({ pool }, read().max);
  },
});

/** Outbox rows not yet published, and the age of the oldest: the outbox lag. */
export const outboxPending = new Gauge({
  name: "bazaar_outbox_pending_messages",
  help: "Outbox rows not yet confirmed by the broker.",
  registers: [registry],
});

/** Age of the oldest unpublished outbox row. */
export const outboxLag = new Gauge({
  name: "bazaar_outbox_lag_seconds",
  help: "Age of the oldest outbox row not yet confirmed by the broker (0 when none).",
  registers: [registry],
});

/** The Prometheus text exposition of every metric of this process. */
export async function metricsText(): Promise<{ body: string; contentType: string }> {
  return { body: await registry.metrics(), contentType: registry.contentType };
}
