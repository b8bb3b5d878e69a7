import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createClient } from "@bazaar/platform/grpc/client";
import { eventually } from "@bazaar/testkit/eventually";
import { freePort, launchProcess, type LaunchedProcess, rpcError } from "@bazaar/testkit/fixtures";
import { CatalogService } from "@bazaar/proto/bazaar/catalog/v1/catalog_pb";
import { spanKinds, startOtlpReceiver } from "./support/otlp-receiver.ts";

// With OTEL_EXPORTER_OTLP_ENDPOINT set, a process sends its log lines over OTLP/HTTP as well
// as writing them to stdout, each record with its span's trace context and the process's
// resource, the same the spans carry, so that Loki's line and Jaeger's trace link up.
const receiver = startOtlpReceiver();
let catalog: LaunchedProcess;
let bff: LaunchedProcess;

const { SERVER } = spanKinds;
const INFO = 9; // the OTLP severity number

beforeAll(async () => {
  catalog = await launchProcess("catalog", { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint });
  bff = await launchProcess("bff", { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint, CATALOG_ADDR: catalog.grpcAddress });
}, 90_000);

afterAll(async () => {
  await bff?.cleanup();
  await catalog?.cleanup();
  receiver.stop();
}, 60_000);

function hex(bytes: number): string {
  return Buffer.from(crypto.getRandomValues(new Uint8Array(bytes))).toString("hex");
}

/** The JSON lines a process wrote (stdout and stderr) whose message is `msg`. */
function linesOf(process: LaunchedProcess, msg: string): Record<string, unknown>[] {
  return process.child
    .output()
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((l) => l.msg === msg);
}

describe("log export over OTLP", () => {
  test("a line logged while serving a call is exported with the service's name and the call's trace and span", async () => {
    const client = createClient(CatalogService, catalog.grpcAddress);
    const traceId = hex(16);
    const missing = "00000000-0000-4000-8000-000000000000";
    try {
      const err = await rpcError(client.getProduct({ id: missing }, { metadata: { traceparent: `00-${traceId}-${hex(8)}-01` } }));
      expect(err.codeName).toBe("NOT_FOUND");
    } finally {
      client.close();
    }
    // The logging interceptor writes "rpc refused" inside the RPC's server span.
    const record = await eventually(() => receiver.logs.find((r) => r.traceId === traceId && r.body === "rpc refused"), {
      what: `catalog's "rpc refused" record in trace ${traceId}`,
      timeoutMs: 10_000,
    });
    const span = await eventually(() => receiver.spans.find((s) => s.traceId === traceId && s.kind === SERVER), {
      what: `catalog's server span in trace ${traceId}`,
      timeoutMs: 10_000,
    });
    expect(span.service).toBe("catalog");
    expect(span.name).toBe("bazaar.catalog.v1.CatalogService/GetProduct");
    expect(record.service).toBe("catalog");
    expect(record.spanId).toBe(span.spanId);
    expect(record.severityNumber).toBe(INFO);
    expect(record.severityText).toBe("INFO");
    expect(record.attributes.code).toBe("NOT_FOUND");
    expect(typeof record.attributes.ms).toBe("number");
    expect(Math.abs(record.time - Date.now())).toBeLessThan(30_000);

    // The stdout line stays as it was, with the same ids.
    const line = linesOf(catalog, "rpc refused").find((l) => l.trace_id === traceId);
    expect(line).toMatchObject({ level: "info", service: "catalog", trace_id: traceId, span_id: span.spanId, code: "NOT_FOUND" });
    expect(receiver.problems).toEqual([]);
  }, 30_000);

  test("a request to the BFF: the catalog's line carries the trace the BFF started, and the BFF exports its own lines", async () => {
    const res = await fetch(`${bff.httpUrl}/api/products/00000000-0000-4000-8000-000000000000`);
    expect(res.status).toBe(404);
    const traceId = (res.headers.get("traceparent") ?? "").split("-")[1];
    expect(traceId).toMatch(/^[0-9a-f]{32}$/);
    const record = await eventually(() => receiver.logs.find((r) => r.traceId === traceId && r.body === "rpc refused"), {
      what: `catalog's "rpc refused" record in the BFF's trace ${traceId}`,
      timeoutMs: 10_000,
    });
    expect(record.service).toBe("catalog");
    const ready = await eventually(() => receiver.logs.find((r) => r.service === "bff" && r.body === "service ready"), {
      what: 'the BFF\'s "service ready" record',
      timeoutMs: 10_000,
    });
    expect(ready.severityText).toBe("INFO");
  }, 30_000);

  test("lines from start-up, written before the SDK had loaded, are exported too, outside any trace", async () => {
    // Written right after the SDK's import began, so kept until it had loaded.
    const first = await eventually(() => receiver.logs.find((r) => r.service === "catalog" && r.body === "exporting traces and logs over OTLP/HTTP"), {
      what: "catalog's first record",
      timeoutMs: 10_000,
    });
    expect(first.traceId).toBe("");
    expect(first.attributes.endpoint).toBe(receiver.endpoint);
    const ready = receiver.logs.find((r) => r.service === "catalog" && r.body === "service ready");
    expect(ready?.attributes.services).toEqual(["bazaar.catalog.v1.CatalogService"]);
    expect(first.time).toBeLessThanOrEqual(ready!.time);
  }, 15_000);

  test("the records still buffered at shutdown are sent before the process exits", async () => {
    // "stopped" is the last line, written just before the telemetry shuts down: only the
    // flush on shutdown can have sent it, and the process has exited, so it is here now.
    for (const [name, process] of [
      ["bff", bff],
      ["catalog", catalog],
    ] as const) {
      await process.cleanup();
      expect(process.child.proc.exitCode).toBe(0);
      expect(receiver.logs.filter((r) => r.service === name && r.body === "stopped").length, name).toBe(1);
    }
  }, 60_000);
});

describe("log export to an endpoint that does not answer", () => {
  test("the process serves and stops as usual", async () => {
    const dead = await launchProcess("catalog", { OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${freePort()}` });
    try {
      const client = createClient(CatalogService, dead.grpcAddress);
      try {
        expect((await client.listProducts({ pageSize: 1 })).products.length).toBe(1);
      } finally {
        client.close();
      }
    } finally {
      const started = performance.now();
      await dead.child.stop();
      const stopMs = performance.now() - started;
      await dead.cleanup();
      expect(dead.child.proc.exitCode).toBe(0);
      // Drain 200 ms, then the last flushes give up: the log records after their 3 s export
      // timeout, the spans after the trace exporter's 10 s one; either way on its own, well
      // before the SIGKILL that stop() sends after 15 s and inside compose's 20 s grace period.
      expect(stopMs).toBeLessThan(12_000);
    }
    expect(linesOf(dead, "stopped").length).toBe(1);
  }, 60_000);
});
