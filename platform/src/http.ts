import { context, trace } from "@opentelemetry/api";
import { type Context, Hono, type MiddlewareHandler } from "hono";
import { routePath } from "hono/route";
import { log } from "./log.ts";
import type { DependencyState } from "./readiness.ts";
import { loopback } from "./host-port.ts";
import { httpServerDuration, httpServerRequests, metricsText, observeLatency } from "./metrics.ts";
import { extractContextFromHeaders, recordError, SpanKind, tracer } from "./telemetry.ts";

/**
 * Hono middleware: a SERVER span per request (continuing the caller's `traceparent`), named
 * by method and route template, and the HTTP request counter and duration histogram.
 * `traceparent` is sent back on the response, so a browser's request can be found in Jaeger.
 */
export function httpTelemetry(): MiddlewareHandler {
  return async (c, next) => {
    const started = performance.now();
    const parent = extractContextFromHeaders(c.req.raw.headers);
    const method = c.req.method;
    const span = tracer().startSpan(
      `${method} ${c.req.path}`,
      {
        kind: SpanKind.SERVER,
        attributes: { "http.request.method": method, "url.path": c.req.path, "url.scheme": c.req.url.startsWith("https:") ? "https" : "http" },
      },
      parent,
    );
    let failure: unknown;
    try {
      await context.with(trace.setSpan(parent, span), next);
    } catch (err) {
      failure = err;
      throw err;
    } finally {
      // After next(), the current route index is that of the handler that answered.
      const route = routePath(c) || "unmatched";
      // Hono turns a thrown error into a 500 after this middleware: count it as one.
      const statusCode = failure ? 500 : c.res.status;
      span.updateName(`${method} ${route}`);
      span.setAttribute("http.route", route);
      span.setAttribute("http.response.status_code", statusCode);
      if (failure) recordError(span, failure);
      else if (statusCode >= 500) span.setStatus({ code: 2, message: `HTTP ${statusCode}` });
      const { traceId, spanId } = span.spanContext();
      if (!failure) c.res.headers.set("traceparent", `00-${traceId}-${spanId}-01`);
      span.end();
      const labels = { method, route, status: String(statusCode) };
      httpServerRequests.inc(labels);
      observeLatency(httpServerDuration, labels, (performance.now() - started) / 1000, span);
    }
  };
}

/** Options of {@link createHttpApp}. */
export interface HttpAppOptions {
  /** Serve `/metrics` on this app (default true); false where the port is public (the BFF's). */
  metrics?: boolean;
  /** The dependencies' states, listed by /readyz. */
  dependencies?: () => Record<string, DependencyState>;
}

/**
 * The HTTP app every process has: telemetry middleware, the probes and, unless told
 * `metrics: false`, `/metrics` (Prometheus text). Apps add their own routes to it.
 * - `/livez`: 200 while the process answers at all (liveness: restart it if this fails).
 * - `/readyz`: 200 while it serves, 503 while it starts, shuts down or a required dependency
 *   is down (readiness: send it no traffic), with each dependency's state.
 * - `/healthz`: the same as /readyz, for the probes and tools that know only that name.
 */
export function createHttpApp(isHealthy: () => boolean, options: HttpAppOptions = {}): Hono {
  const app = new Hono();
  app.use(httpTelemetry());
  app.get("/livez", (c) => c.json({ status: "ALIVE" }));
  const readiness = (c: Context) => {
    const body = { status: isHealthy() ? "SERVING" : "NOT_SERVING", ...(options.dependencies ? { dependencies: options.dependencies() } : {}) };
    return c.json(body, body.status === "SERVING" ? 200 : 503);
  };
  app.get("/readyz", readiness);
  app.get("/healthz", readiness);
  if (options.metrics !== false) app.get("/metrics", serveMetrics);
  return app;
}

/**
 * The app of a metrics port: `/metrics` and nothing else. Not traced or counted itself, so
 * scrapes do not show up in the HTTP metrics they read.
 */
export function createMetricsApp(): Hono {
  return new Hono().get("/metrics", serveMetrics);
}

async function serveMetrics(c: Context): Promise<Response> {
  const { body, contentType } = await metricsText();
  return c.body(body, 200, { "content-type": contentType });
}

/**
 * Serves a Hono app on a port with Bun's HTTP server (0 picks a free port), on loopback
 * unless given another address (BIND_HOST).
 */
export function serveHttp(app: Hono, port: number, hostname = loopback) {
  const server = Bun.serve({ port, hostname, fetch: app.fetch, idleTimeout: 60 });
  log.info("http listening", { hostname, port: server.port });
  return server;
}
