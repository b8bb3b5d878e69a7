import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { eventually } from "@bazaar/testkit/eventually";
import { launchProcess, type LaunchedProcess } from "@bazaar/testkit/fixtures";
import { type ReceivedSpan, spanKinds, startOtlpReceiver } from "./support/otlp-receiver.ts";

// One request to the BFF must be one trace across processes, exported over OTLP/HTTP as
// Jaeger would receive it: BFF HTTP server → gRPC client → catalog gRPC server → Postgres/Redis.
const receiver = startOtlpReceiver();
let catalog: LaunchedProcess;
let bff: LaunchedProcess;

const { SERVER, CLIENT } = spanKinds;

beforeAll(async () => {
  catalog = await launchProcess("catalog", { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint });
  bff = await launchProcess("bff", { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint, CATALOG_ADDR: catalog.grpcAddress });
}, 60_000);

afterAll(async () => {
  await bff?.cleanup();
  await catalog?.cleanup();
  receiver.stop();
}, 60_000);

function traceIdOf(res: Response): string {
  const traceparent = res.headers.get("traceparent") ?? "";
  const traceId = traceparent.split("-")[1];
  if (!traceId) throw new Error(`the response carries no traceparent (got ${JSON.stringify(traceparent)})`);
  return traceId;
}

function child(spans: ReceivedSpan[], parent: ReceivedSpan, where: (s: ReceivedSpan) => boolean): ReceivedSpan {
  const found = spans.find((s) => s.parentSpanId === parent.spanId && where(s));
  if (!found) {
    throw new Error(
      `no matching child of ${parent.service}:${parent.name}; trace has ${spans.map((s) => `${s.service}:${s.name}(parent ${s.parentSpanId})`).join(", ")}`,
    );
  }
  return found;
}

describe("distributed tracing", () => {
  test("GET /api/products is one trace: BFF HTTP server → gRPC client → catalog server → database", async () => {
    const res = await fetch(`${bff.httpUrl}/api/products?q=wool`);
    expect(res.status).toBe(200);
    const traceId = traceIdOf(res);
    const inTrace = () => receiver.spans.filter((s) => s.traceId === traceId);
    await eventually(() => inTrace().filter((s) => s.service === "catalog" && s.attributes["db.system.name"] === "postgresql").length >= 2, {
      what: "two Postgres spans of catalog in the trace",
      timeoutMs: 10_000,
    });
    await eventually(() => inTrace().some((s) => s.service === "bff" && s.kind === SERVER), { what: "the BFF's server span in the trace", timeoutMs: 10_000 });
    const spans = inTrace();

    const root = spans.find((s) => s.parentSpanId === "");
    expect(root?.service).toBe("bff");
    expect(root?.kind).toBe(SERVER);
    expect(root?.name).toBe("GET /api/products");
    expect(root?.attributes["http.response.status_code"]).toBe(200);
    expect(root?.attributes["http.route"]).toBe("/api/products");

    const rpcClient = child(spans, root!, (s) => s.kind === CLIENT);
    expect(rpcClient.service).toBe("bff");
    expect(rpcClient.name).toBe("bazaar.catalog.v1.CatalogService/ListProducts");

    const rpcServer = child(spans, rpcClient, (s) => s.kind === SERVER);
    expect(rpcServer.service).toBe("catalog");
    expect(rpcServer.name).toBe("bazaar.catalog.v1.CatalogService/ListProducts");
    expect(rpcServer.attributes["rpc.grpc.status_code"]).toBe(0);

    // The page query and the count query, both children of the RPC span.
    const queries = spans.filter((s) => s.parentSpanId === rpcServer.spanId && s.attributes["db.system.name"] === "postgresql");
    expect(queries.length).toBe(2);
    for (const q of queries) {
      expect(q.service).toBe("catalog");
      expect(q.kind).toBe(CLIENT);
      expect(q.name).toStartWith("SELECT bazaar_catalog_test_");
      expect(String(q.attributes["db.query.text"])).toContain("to_tsquery");
      // Values travel as placeholders, never inline.
      expect(String(q.attributes["db.query.text"])).not.toContain("wool");
    }
  });

  test("GET /api/products/:id on a cold cache traces the Redis read, the database read and the Redis write", async () => {
    const list = (await (await fetch(`${bff.httpUrl}/api/products?pageSize=1&q=walnut`)).json()) as { products: { id: string }[] };
    const res = await fetch(`${bff.httpUrl}/api/products/${list.products[0]!.id}`);
    expect(res.status).toBe(200);
    const traceId = traceIdOf(res);
    const inTrace = () => receiver.spans.filter((s) => s.traceId === traceId);
    await eventually(() => inTrace().filter((s) => s.attributes["db.system.name"] === "redis").length >= 2, {
      what: "two Redis spans in the trace",
      timeoutMs: 10_000,
    });
    await eventually(() => inTrace().some((s) => s.service === "bff" && s.kind === SERVER), { what: "the BFF's server span in the trace", timeoutMs: 10_000 });
    const spans = inTrace();
    const rpcServer = spans.find((s) => s.service === "catalog" && s.kind === SERVER);
    expect(rpcServer?.name).toBe("bazaar.catalog.v1.CatalogService/GetProduct");
    const children = spans
      .filter((s) => s.parentSpanId === rpcServer?.spanId)
      .map((s) => `${s.attributes["db.system.name"]}:${s.attributes["db.operation.name"]}`);
    expect(children).toEqual(["redis:MGET", "postgresql:SELECT", "redis:SET"]);
  });

  test("a failed call marks the client span as an error and the 404 is not a server error", async () => {
    const res = await fetch(`${bff.httpUrl}/api/products/00000000-0000-4000-8000-000000000000`);
    expect(res.status).toBe(404);
    const traceId = traceIdOf(res);
    const inTrace = () => receiver.spans.filter((s) => s.traceId === traceId);
    // Each process exports on its own schedule: wait for both server spans, not just a count.
    const serverOf = (service: string) => inTrace().some((s) => s.service === service && s.kind === SERVER);
    await eventually(() => inTrace().length >= 3 && serverOf("bff") && serverOf("catalog"), {
      what: "three spans in the trace, among them the BFF's and the catalog's server spans",
      timeoutMs: 10_000,
    });
    const spans = inTrace();
    const rpcClient = spans.find((s) => s.service === "bff" && s.kind === CLIENT);
    const rpcServer = spans.find((s) => s.service === "catalog" && s.kind === SERVER);
    expect(rpcClient?.status.code).toBe(2);
    expect(rpcServer?.attributes["rpc.grpc.status_code"]).toBe(5);
    expect(rpcServer?.status.code ?? 0).toBe(0);
    expect(receiver.problems).toEqual([]);
  });
});
