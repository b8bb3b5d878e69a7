import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { ensureVhost } from "@bazaar/platform/messaging/vhost";
import { eventually } from "@bazaar/testkit/eventually";
import { launchProcess, type LaunchedProcess, testEnv } from "@bazaar/testkit/fixtures";
import { startTestPlatform, type TestPlatform } from "@bazaar/testkit/test-platform";
import { body, overHttp, TestBrowser } from "../bff/test/support/browser.ts";
import { SseReader } from "../bff/test/support/sse.ts";
import { type ReceivedSpan, spanKinds, startOtlpReceiver } from "./support/otlp-receiver.ts";

// One checkout is one trace (DESIGN.md, Observability): every process of a platform and a BFF
// process export over OTLP/HTTP to one receiver, a shopper checks out through the BFF's HTTP API
// with the live-status stream open, and every span of that checkout — the saga's calls, every
// transaction and query, the outbox publishes and each consumer's processing — is in the trace
// of the BFF's POST /api/checkout.
const receiver = startOtlpReceiver();
let platform: TestPlatform;
let bff: LaunchedProcess;

const { SERVER, CLIENT, PRODUCER, CONSUMER } = spanKinds;

beforeAll(async () => {
  const otel = { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint };
  platform = await startTestPlatform({
    identity: otel,
    catalog: otel,
    inventory: otel,
    cart: otel,
    orders: otel,
    payments: otel,
    notifications: otel,
  });
  const addresses = Object.fromEntries(
    (["identity", "catalog", "inventory", "cart", "orders", "payments", "notifications"] as const).map((s) => [`${s.toUpperCase()}_ADDR`, platform.address(s)]),
  );
  bff = await launchProcess("bff", {
    ...otel,
    ...addresses,
    OAUTH_TOKEN_URL: `${platform.httpUrl("identity")}/oauth2/token`,
    AMQP_URL: await ensureVhost(testEnv.AMQP_URL, platform.vhost),
  });
}, 120_000);

afterAll(async () => {
  await bff?.cleanup();
  await platform?.cleanup();
  receiver.stop();
}, 60_000);

/** A span as the failure messages show it. */
const describeSpan = (s: ReceivedSpan) => `${s.service}:${s.name}[${s.spanId} ← ${s.parentSpanId || "root"}]`;

/** Throws with every span of the trace when `found` is undefined. */
function expectFound<T>(found: T | undefined, what: string, spans: ReceivedSpan[]): T {
  if (found === undefined || (Array.isArray(found) && found.length === 0)) {
    throw new Error(`${what}: not in the trace; the trace has ${spans.length} spans: ${spans.map(describeSpan).join(", ")}`);
  }
  return found;
}

function child(spans: ReceivedSpan[], parent: ReceivedSpan, what: string, where: (s: ReceivedSpan) => boolean): ReceivedSpan {
  return expectFound(
    spans.find((s) => s.parentSpanId === parent.spanId && where(s)),
    `${what} as a child of ${describeSpan(parent)}`,
    spans,
  );
}

/** The span and every span under it, by parent id. */
function subtree(spans: ReceivedSpan[], root: ReceivedSpan): ReceivedSpan[] {
  const out = [root];
  for (let i = 0; i < out.length; i++) out.push(...spans.filter((s) => s.parentSpanId === out[i]!.spanId));
  return out;
}

/** Spans on the longest path from the root, the root counted. */
function depth(spans: ReceivedSpan[], root: ReceivedSpan): number {
  const children = spans.filter((s) => s.parentSpanId === root.spanId);
  return 1 + Math.max(0, ...children.map((c) => depth(spans, c)));
}

describe("one checkout is one trace", () => {
  test("POST /api/checkout traces the saga's calls, every transaction and query, the outbox publishes and every consumer", async () => {
    const browser = new TestBrowser(overHttp(bff.httpUrl));
    await browser.signUp("Trace Buyer");
    const { products } = await body<{ products: { id: string }[] }>(await browser.get("/api/products?pageSize=5"));
    const productId = expectFound(products[0]?.id, "a product", []);
    const added = await browser.post("/api/cart/items", { productId, quantity: 1 });
    expect(added.status).toBe(200);

    // The live status stream, open as the orders page keeps it.
    const stream = await browser.get("/api/events", { accept: "text/event-stream" });
    expect(stream.status).toBe(200);
    const live = new SseReader(stream);
    try {
      const res = await browser.checkout();
      expect(res.status).toBe(201);
      const traceId = (res.headers.get("traceparent") ?? "").split("-")[1] ?? "";
      expect(traceId).toMatch(/^[0-9a-f]{32}$/);
      const { order } = await body<{ order: { id: string; status: string } }>(res);
      // The stream shows the order confirmed: the BFF's live-status consumer has processed order.confirmed.
      await live.until((m) => m.data.includes(order.id) && m.data.includes('"CONFIRMED"'), 20_000);

      const inTrace = () => receiver.spans.filter((s) => s.traceId === traceId);
      const processed = (service: string, routingKey: string) =>
        inTrace().some((s) => s.service === service && s.kind === CONSUMER && s.name === `${routingKey} process`);
      await eventually(
        () =>
          inTrace().some((s) => s.service === "bff" && s.kind === SERVER && s.name === "POST /api/checkout") &&
          processed("cart", "order.confirmed.v1") &&
          processed("notifications", "order.confirmed.v1") &&
          processed("notifications", "order.placed.v1") &&
          processed("bff", "order.confirmed.v1") &&
          processed("bff", "order.placed.v1"),
        { what: "the checkout's server span and every consumer's processing span in its trace", timeoutMs: 15_000 },
      ).catch((err: Error) => {
        throw new Error(`${err.message}; the trace has ${inTrace().map(describeSpan).join(", ")}`);
      });
      // Each process exports every 500 ms: give the last batches (queries under the consumers) time.
      await Bun.sleep(1_500);
      const spans = inTrace();

      // The BFF's server span is the root.
      const root = expectFound(
        spans.find((s) => s.parentSpanId === ""),
        "a root span",
        spans,
      );
      expect(describeSpan(root)).toBe(describeSpan({ ...root, service: "bff", name: "POST /api/checkout" }));
      expect(root.kind).toBe(SERVER);
      expect(root.attributes["http.response.status_code"]).toBe(201);
      const roots = spans.filter((s) => s.parentSpanId === "" || !spans.some((p) => p.spanId === s.parentSpanId));
      expect(roots.map(describeSpan)).toEqual([describeSpan(root)]);

      // BFF → orders.PlaceOrder.
      const placeClient = child(spans, root, "the BFF's PlaceOrder call", (s) => s.kind === CLIENT && s.name === "bazaar.orders.v1.OrdersService/PlaceOrder");
      const placeOrder = child(spans, placeClient, "orders' PlaceOrder server span", (s) => s.service === "orders" && s.kind === SERVER);
      const underPlaceOrder = subtree(spans, placeOrder);

      // The saga's calls, each with its server span as the child.
      for (const [service, rpc] of [
        ["catalog", "bazaar.catalog.v1.CatalogService/BatchGetProducts"],
        ["inventory", "bazaar.inventory.v1.InventoryService/ReserveStock"],
        ["payments", "bazaar.payments.v1.PaymentsService/Charge"],
        ["inventory", "bazaar.inventory.v1.InventoryService/CommitReservation"],
      ] as const) {
        const call = expectFound(
          underPlaceOrder.find((s) => s.service === "orders" && s.kind === CLIENT && s.name === rpc),
          `orders' ${rpc} call under PlaceOrder`,
          spans,
        );
        const server = child(spans, call, `${service}'s ${rpc} server span`, (s) => s.service === service && s.kind === SERVER && s.name === rpc);
        expect(server.attributes["rpc.grpc.status_code"]).toBe(0);
      }

      // Every query is in a transaction span or a server/consumer span of the trace; every
      // transaction span has its queries under it.
      const queries = spans.filter((s) => s.attributes["db.system.name"] === "postgresql" && s.attributes["db.operation.name"] !== "TRANSACTION");
      const transactions = spans.filter((s) => s.attributes["db.operation.name"] === "TRANSACTION");
      for (const service of ["orders", "inventory", "payments", "notifications"]) {
        expectFound(
          transactions.find((t) => t.service === service),
          `a transaction span of ${service}`,
          spans,
        );
      }
      for (const t of transactions) {
        expect(t.kind).toBe(CLIENT);
        expectFound(
          queries.find((q) => q.parentSpanId === t.spanId),
          `a query under the transaction ${describeSpan(t)}`,
          spans,
        );
      }
      // PlaceOrder's transaction writes the order, its saga and its order.placed event.
      const placeTx = child(spans, placeOrder, "PlaceOrder's transaction", (s) => s.attributes["db.operation.name"] === "TRANSACTION");
      const placeInserts = spans.filter((s) => s.parentSpanId === placeTx.spanId).map((s) => String(s.attributes["db.query.text"]));
      expectFound(
        placeInserts.find((q) => q.startsWith('insert into "outbox"')),
        "the outbox insert in PlaceOrder's transaction",
        spans,
      );

      // The outbox relay's publishes: order.placed and order.confirmed, each a PRODUCER span
      // whose parent is the span that wrote the outbox row (in the orders process).
      const publishes = spans.filter((s) => s.kind === PRODUCER);
      for (const routingKey of ["order.placed.v1", "order.confirmed.v1"]) {
        const publish = expectFound(
          publishes.find((s) => s.service === "orders" && s.name === `${routingKey} publish`),
          `orders' ${routingKey} publish span`,
          spans,
        );
        expect(publish.attributes["messaging.system"]).toBe("rabbitmq");
        expect(publish.attributes["messaging.operation.type"]).toBe("send");
        expect(publish.attributes["messaging.rabbitmq.destination.routing_key"]).toBe(routingKey);
        const writer = expectFound(
          spans.find((s) => s.spanId === publish.parentSpanId),
          `the parent of ${describeSpan(publish)}`,
          spans,
        );
        expect(writer.service).toBe("orders");
        expectFound(
          subtree(spans, writer).find((s) => String(s.attributes["db.query.text"] ?? "").startsWith('insert into "outbox"')),
          `the outbox insert under ${describeSpan(writer)}, the publish's parent`,
          spans,
        );

        // The relay sends a batch in a trace of its own (its claim and mark are not this
        // checkout's work): the publish links to it.
        const [link, ...moreLinks] = publish.links;
        expect(moreLinks).toEqual([]);
        expect(link?.traceId).not.toBe(traceId);
        const batch = expectFound(
          receiver.spans.find((s) => s.spanId === link?.spanId),
          `the relay's batch span that ${describeSpan(publish)} links to`,
          spans,
        );
        expect(`${batch.service}:${batch.attributes["db.operation.name"]}`).toBe("orders:TRANSACTION");
        const claims = receiver.spans.filter((s) => s.parentSpanId === batch.spanId).map((s) => String(s.attributes["db.query.text"]));
        expect(claims.some((q) => q.includes('from "outbox"') && q.endsWith("for update skip locked"))).toBe(true);

        // Each consumer's processing span is a child of the publish.
        const consumers: [string, string][] =
          routingKey === "order.confirmed.v1"
            ? [
                ["cart", "cart.order-confirmed"],
                ["notifications", "notifications.events"],
                ["bff", "bff.live-orders"],
              ]
            : [
                ["notifications", "notifications.events"],
                ["bff", "bff.live-orders"],
              ];
        for (const [service, queue] of consumers) {
          const processing = child(spans, publish, `${service}'s processing of ${routingKey}`, (s) => s.service === service && s.kind === CONSUMER);
          expect(processing.name).toBe(`${routingKey} process`);
          expect(processing.attributes["messaging.operation.type"]).toBe("process");
          expect(processing.attributes["messaging.destination.name"]).toBe(queue);
          expect(processing.attributes["messaging.message.id"]).toBe(publish.attributes["messaging.message.id"]);
        }
        if (routingKey === "order.confirmed.v1") {
          // cart clears the shopper's cart (one Redis script) under its processing span.
          const cleared = child(spans, publish, "cart's processing", (s) => s.service === "cart" && s.kind === CONSUMER);
          child(spans, cleared, "cart's clearing of the cart", (s) => s.attributes["db.system.name"] === "redis" && s.name === "EVALSHA cart.clear-once");
        }
        // notifications writes its inbox row and the notification in a transaction under its processing span.
        const notified = child(spans, publish, "notifications' processing", (s) => s.service === "notifications" && s.kind === CONSUMER);
        expectFound(
          subtree(spans, notified).find((s) => s.attributes["db.operation.name"] === "TRANSACTION"),
          `notifications' transaction under ${describeSpan(notified)}`,
          spans,
        );
      }

      const { cart } = await body<{ cart: { lines: unknown[] } }>(await browser.get("/api/cart"));
      expect(cart.lines).toEqual([]);

      const treeDepth = depth(spans, root);
      if (process.env.TRACE_DUMP) console.log(spans.map((s) => `${describeSpan(s)} ${s.attributes["db.query.text"] ?? ""}`).join("\n"));
      console.log(`one checkout: ${spans.length} spans in trace ${traceId}, tree depth ${treeDepth}`);
      expect(treeDepth).toBeGreaterThanOrEqual(6);
      expect(receiver.problems).toEqual([]);
    } finally {
      await stream.body?.cancel().catch(() => {});
    }
  }, 60_000);

  test("a saga resumed after a failed step (inventory down at checkout) continues the order's trace", async () => {
    const browser = new TestBrowser(overHttp(bff.httpUrl));
    await browser.signUp("Trace Retry");
    const { products } = await body<{ products: { id: string }[] }>(await browser.get("/api/products?pageSize=5"));
    const added = await browser.post("/api/cart/items", { productId: expectFound(products[1]?.id, "a second product", []), quantity: 1 });
    expect(added.status).toBe(200);
    const stream = await browser.get("/api/events", { accept: "text/event-stream" });
    const live = new SseReader(stream);
    await platform.stop("inventory");
    try {
      // ReserveStock fails (UNAVAILABLE), so the saga waits for a retry, which the poll takes.
      const res = await browser.checkout();
      expect(res.status).toBe(201);
      const traceId = (res.headers.get("traceparent") ?? "").split("-")[1] ?? "";
      const { order } = await body<{ order: { id: string; status: string } }>(res);
      expect(order.status).toBe("PENDING");
      await platform.start("inventory");
      await live.until((m) => m.data.includes(order.id) && m.data.includes('"CONFIRMED"'), 40_000);

      const inTrace = () => receiver.spans.filter((s) => s.traceId === traceId);
      await eventually(() => inTrace().some((s) => s.service === "cart" && s.kind === CONSUMER && s.name === "order.confirmed.v1 process"), {
        what: "cart's processing of order.confirmed in the checkout's trace",
        timeoutMs: 15_000,
      }).catch((err: Error) => {
        throw new Error(`${err.message}; the trace has ${inTrace().map(describeSpan).join(", ")}`);
      });
      await Bun.sleep(1_500);
      const spans = inTrace();
      const placeOrder = expectFound(
        spans.find((s) => s.service === "orders" && s.kind === SERVER && s.name === "bazaar.orders.v1.OrdersService/PlaceOrder"),
        "orders' PlaceOrder server span",
        spans,
      );
      // The resumed run is a child of the context PlaceOrder stored with the saga.
      const resumed = spans.filter((s) => s.service === "orders" && s.name === "order saga resume");
      expectFound(resumed[0], "a resumed run of the saga", spans);
      for (const r of resumed) {
        expect(r.parentSpanId).toBe(placeOrder.spanId);
        expect(r.attributes["bazaar.order.id"]).toBe(order.id);
      }
      const underResumes = resumed.flatMap((r) => subtree(spans, r));
      for (const [service, rpc] of [
        ["inventory", "bazaar.inventory.v1.InventoryService/ReserveStock"],
        ["payments", "bazaar.payments.v1.PaymentsService/Charge"],
        ["inventory", "bazaar.inventory.v1.InventoryService/CommitReservation"],
      ] as const) {
        const call = expectFound(
          underResumes.find((s) => s.kind === CLIENT && s.name === rpc && spans.some((c) => c.parentSpanId === s.spanId && c.service === service)),
          `orders' ${rpc} call, answered by ${service}, under a resumed run`,
          spans,
        );
        child(spans, call, `${service}'s ${rpc} server span`, (s) => s.service === service && s.kind === SERVER && s.attributes["rpc.grpc.status_code"] === 0);
      }
      const publish = expectFound(
        underResumes.find((s) => s.kind === PRODUCER && s.name === "order.confirmed.v1 publish"),
        "order.confirmed's publish under a resumed run",
        spans,
      );
      child(spans, publish, "cart's processing of order.confirmed", (s) => s.service === "cart" && s.kind === CONSUMER);
      console.log(
        `a resumed checkout: ${spans.length} spans, tree depth ${depth(
          spans,
          expectFound(
            spans.find((s) => s.parentSpanId === ""),
            "a root",
            spans,
          ),
        )}`,
      );
    } finally {
      await stream.body?.cancel().catch(() => {});
    }
  }, 90_000);
});
