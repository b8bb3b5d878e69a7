import { context, propagation, type Attributes, type Context, type Span, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { AlwaysOffSampler, BatchSpanProcessor, TracerProvider } from "@opentelemetry/sdk-trace";
import { type LogFields, type LogLevel, log, setLogSink } from "./log.ts";
import type { LogExport, LogLine } from "./log-export.ts";

/**
 * OpenTelemetry tracing for one process. Auto-instrumentation does not patch ESM imports on
 * Bun, so every span in Bazaar is made explicitly: the Hono middleware (HTTP server), the gRPC
 * client and server interceptors, the database driver wrapper and the cache wrapper all call
 * {@link withSpan}. Context crosses processes as W3C `traceparent` in HTTP headers and gRPC
 * metadata.
 */
let provider: TracerProvider | undefined;
/** The logs SDK, while it loads and once it is running; only with an endpoint. */
let logExport: Promise<LogExport | undefined> | undefined;

/** Options for {@link startTelemetry}. */
export interface TelemetryOptions {
  /** The OpenTelemetry `service.name`, e.g. "catalog". */
  serviceName: string;
  /**
   * Base URL of an OTLP/HTTP receiver (the collector); spans go to `<endpoint>/v1/traces` and
   * log records to `<endpoint>/v1/logs`. Unset: neither is exported.
   */
  otlpEndpoint?: string | undefined;
}

/**
 * Sets up the global tracer provider, context manager and W3C propagator. Every span has ids,
 * so logs carry trace ids and context propagates, exported or not. Spans are recorded and
 * exported only when an endpoint is given: without one, a sampler that records nothing makes
 * each span a bare span context (fresh ids, no attributes, events or timing kept), which is
 * all the logs and the propagation need, at a fraction of the CPU. With an endpoint, every
 * log line is exported too, see {@link startLogExport}.
 */
export function startTelemetry({ serviceName, otlpEndpoint }: TelemetryOptions): void {
  if (provider) return;
  const spanProcessors = otlpEndpoint
    ? [
        new BatchSpanProcessor({
          exporter: new OTLPTraceExporter({ url: `${otlpEndpoint.replace(/\/$/, "")}/v1/traces` }),
          // Small batches, sent often: a developer looking at Jaeger wants the trace now.
          scheduledDelayMillis: 500,
          maxExportBatchSize: 256,
        }),
      ]
    : [];
  const resource = resourceFromAttributes({ "service.name": serviceName });
  provider = new TracerProvider({
    resource,
    spanProcessors,
    ...(otlpEndpoint ? {} : { sampler: new AlwaysOffSampler() }),
  });
  trace.setGlobalTracerProvider(provider);
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  if (otlpEndpoint) {
    startLogExport(otlpEndpoint, resource);
    log.info("exporting traces and logs over OTLP/HTTP", { endpoint: otlpEndpoint });
  }
}

/** Lines written while the logs SDK loads, sent once it has; bounded, the oldest kept. */
const maxEarlyLines = 1_000;

/**
 * Exports every log line from now on as an OTLP log record, with the same resource as the
 * spans. The SDK is imported here, not at the top of the file: a process without an endpoint
 * never loads it. The lines written while it loads (start-up's first few) are kept with their
 * time and context and emitted once it has. If it cannot load or start, the process goes on
 * logging to stdout alone.
 */
function startLogExport(endpoint: string, resource: ReturnType<typeof resourceFromAttributes>): void {
  const early: LogLine[] = [];
  const line = (level: LogLevel, msg: string, fields: LogFields): LogLine => ({ level, msg, fields, time: Date.now(), context: context.active() });
  setLogSink((level, msg, fields) => {
    if (early.length < maxEarlyLines) early.push(line(level, msg, fields));
  });
  logExport = import("./log-export.ts")
    .then((sdk) => {
      const exported = sdk.startLogExport({ endpoint, resource });
      for (const l of early.splice(0)) exported.emit(l);
      setLogSink((level, msg, fields) => exported.emit(line(level, msg, fields)));
      return exported;
    })
    .catch((err: unknown) => {
      setLogSink(undefined);
      log.warn("cannot export logs over OTLP; logging to stdout only", { err });
      return undefined;
    });
}

/** Sends the spans and log records still buffered and stops the providers. */
export async function shutdownTelemetry(): Promise<void> {
  const logs = logExport;
  logExport = undefined;
  await Promise.all([
    provider?.shutdown().catch((err: unknown) => log.warn("flushing traces failed", { err })),
    logs?.then((exported) => {
      setLogSink(undefined);
      return exported?.shutdown();
    }),
  ]);
  provider = undefined;
}

/** The tracer Bazaar's instrumentation uses. */
export function tracer() {
  return trace.getTracer("bazaar");
}

/** Options for a span made by {@link withSpan}. */
export interface SpanOptions {
  kind?: SpanKind;
  attributes?: Attributes;
  /** The parent context; the active context when omitted. */
  parent?: Context;
}

/**
 * Runs `fn` inside a new active span, ends the span when `fn` settles, and records a thrown
 * error on it (status ERROR, exception event) before rethrowing.
 */
export async function withSpan<T>(name: string, options: SpanOptions, fn: (span: Span) => Promise<T> | T): Promise<T> {
  const parent = options.parent ?? context.active();
  const span = tracer().startSpan(name, { kind: options.kind ?? SpanKind.INTERNAL, attributes: options.attributes }, parent);
  try {
    return await context.with(trace.setSpan(parent, span), () => fn(span));
  } catch (err) {
    recordError(span, err);
    throw err;
  } finally {
    span.end();
  }
}

/** Marks a span as failed by this error. */
export function recordError(span: Span, err: unknown): void {
  span.recordException(err instanceof Error ? err : String(err));
  span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
}

/** Reads a W3C trace context from carrier headers (HTTP headers, gRPC metadata as a record). */
export function extractContext(carrier: Record<string, string | string[] | undefined>): Context {
  return propagation.extract(context.active(), carrier, {
    get: (c, key) => c[key],
    keys: (c) => Object.keys(c),
  });
}

/** Reads a W3C trace context from HTTP request headers, without copying them. */
export function extractContextFromHeaders(headers: Headers): Context {
  return propagation.extract(context.active(), headers, {
    get: (h, key) => h.get(key) ?? undefined,
    keys: (h) => [...h.keys()],
  });
}

/** Writes the active trace context into a carrier (`traceparent`, `tracestate`). */
export function injectContext(carrier: Record<string, string>, ctx: Context = context.active()): void {
  propagation.inject(ctx, carrier);
}

export { SpanKind, SpanStatusCode };
