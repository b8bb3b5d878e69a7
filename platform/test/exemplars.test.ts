import { afterAll, describe, expect, test } from "bun:test";
import { TraceFlags, trace } from "@opentelemetry/api";
import { grpcServerDuration, metricsText, observeLatency } from "@bazaar/platform/metrics";
import { eventually } from "@bazaar/testkit/eventually";
import { PrivatePrometheus } from "@bazaar/testkit/monitoring-servers";

// A latency bucket carries the trace id of a sampled call as its exemplar, so a slow bucket on
// a dashboard links to a trace; the real Prometheus takes it from the OpenMetrics exposition.
const sampled = trace.wrapSpanContext({ traceId: "4bf92f3577b34da6a3ce929d0e0e4736", spanId: "00f067aa0ba902b7", traceFlags: TraceFlags.SAMPLED });
const unsampled = trace.wrapSpanContext({ traceId: "0af7651916cd43dd8448eb211c80319c", spanId: "b7ad6b7169203331", traceFlags: TraceFlags.NONE });
const labels = { grpc_service: "bazaar.test.v1.ExemplarService", grpc_method: "Slow", grpc_type: "unary", grpc_code: "OK" };

const target = Bun.serve({
  hostname: "127.0.0.1",
  port: 0,
  async fetch() {
    const { body, contentType } = await metricsText();
    return new Response(body, { headers: { "content-type": contentType } });
  },
});
let prometheus: PrivatePrometheus | undefined;

afterAll(async () => {
  await prometheus?.destroy();
  target.stop(true);
});

describe("exemplars", () => {
  test("a sampled call's trace id is its bucket's exemplar, an unsampled call leaves none, and Prometheus stores it", async () => {
    observeLatency(grpcServerDuration, { ...labels, grpc_method: "Unsampled" }, 0.2, unsampled);
    observeLatency(grpcServerDuration, labels, 0.2, sampled);
    const { body, contentType } = await metricsText();
    expect(contentType).toStartWith("application/openmetrics-text");
    const buckets = body.split("\n").filter((l) => l.startsWith("grpc_server_handling_seconds_bucket{") && l.includes('le="0.25"'));
    expect(buckets.find((l) => l.includes('grpc_method="Slow"'))).toContain(`# {trace_id="${sampled.spanContext().traceId}"} 0.2`);
    expect(buckets.find((l) => l.includes('grpc_method="Unsampled"'))).not.toContain("trace_id");

    prometheus = await PrivatePrometheus.create({
      config: { global: { scrape_interval: "1s" }, scrape_configs: [{ job_name: "exemplars", static_configs: [{ targets: [`127.0.0.1:${target.port}`] }] }] },
    });
    await prometheus.waitForTargetsUp();
    const stored = await eventually(
      async () => {
        const series = await prometheus!.exemplars('grpc_server_handling_seconds_bucket{grpc_method="Slow"}');
        return series.flatMap((s) => s.exemplars).find((e) => e.labels.trace_id === sampled.spanContext().traceId);
      },
      { what: "the exemplar in Prometheus", timeoutMs: 15_000 },
    );
    expect(Number(stored.value)).toBe(0.2);
  }, 30_000);
});
