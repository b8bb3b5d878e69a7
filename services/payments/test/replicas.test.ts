import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import postgres from "postgres";
import { ensureDatabase } from "@bazaar/platform/db";
import { createClient, type GrpcClient } from "@bazaar/platform/grpc/client";
import { configureLogging } from "@bazaar/platform/log";
import { Broker, on } from "@bazaar/platform/messaging/broker";
import { events } from "@bazaar/platform/messaging/events";
import { eventually } from "@bazaar/testkit/eventually";
import { type BearerAuth, bearer, type LaunchedProcess, uniqueName } from "@bazaar/testkit/fixtures";
import { TestScope } from "@bazaar/testkit/test-scope";
import { PaymentsService, PaymentStatus } from "@bazaar/proto/bazaar/payments/v1/payments_pb";

// Two real payments processes (src/main.ts) sharing one database and RabbitMQ vhost, as two
// replicas behind a load balancer would.
const scope = new TestScope();
const databaseUrl = scope.databaseUrl("payments");
let replicas: LaunchedProcess[] = [];
let clients: GrpcClient<typeof PaymentsService>[] = [];
let sql: postgres.Sql;
let broker: Broker;
let asService: BearerAuth;
let asAdmin: BearerAuth;
const buyer = { id: crypto.randomUUID(), auth: bearer("") };
const captured: string[] = [];

const card = { number: "4242 4242 4242 4242", expiryMonth: 12, expiryYear: new Date().getUTCFullYear() + 2, cvc: "0917" };
/** A charge of the buyer's with a token from one replica (the first unless said otherwise), to charge on either. */
async function chargeRequest(tokenizeOn = 0) {
  const { paymentMethod } = await clients[tokenizeOn]!.createPaymentMethod({ card }, buyer.auth);
  return {
    idempotencyKey: uniqueName("charge"),
    orderId: crypto.randomUUID(),
    userId: buyer.id,
    amount: { currencyCode: "USD", amountMinor: 1500n },
    paymentMethodToken: paymentMethod!.token,
  };
}

beforeAll(async () => {
  configureLogging("payments-replicas-test", "warn");
  const issuer = await scope.issuer();
  const vhost = await scope.vhost();
  asService = bearer(await issuer.token({ sub: "service:orders", roles: ["service"] }));
  asAdmin = bearer(await issuer.token({ sub: crypto.randomUUID(), roles: ["admin"] }));
  buyer.auth = bearer(await issuer.token({ sub: buyer.id, roles: ["customer"] }));
  const env = {
    JWKS_URL: issuer.jwksUrl,
    JWT_ISSUER: issuer.issuer,
    JWT_AUDIENCE: issuer.audience,
    DATABASE_URL: databaseUrl,
    AMQP_URL: vhost.url,
    // Shorter than the default, to keep the test quick; the in-process tests cover the 1 s bound.
    FAULT_SETTINGS_CACHE_MS: "200",
  };
  // Created up front, so the two replicas start together against one database and race only on
  // its migrations (which take an advisory lock).
  await ensureDatabase(databaseUrl);
  const started = await Promise.allSettled([scope.launch("payments", env), scope.launch("payments", env)]);
  replicas = started.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
  const failed = started.find((r) => r.status === "rejected");
  if (failed) throw failed.reason; // afterAll stops the one that did start
  clients = replicas.map((r) => scope.add(createClient(PaymentsService, r.grpcAddress), (c) => c.close()));
  sql = scope.add(postgres(databaseUrl, { max: 2, onnotice: () => {} }), (s) => s.end({ timeout: 5 }));
  broker = scope.add(await Broker.connect(vhost.url, { service: "payments-replicas-test" }), (b) => b.close());
  await broker.consume({ queue: "payments-test.captured", handlers: [on(events.paymentCaptured, async (e) => void captured.push(e.paymentId))] });
}, 60_000);

afterAll(() => scope.cleanup(), 60_000);

describe("two replicas", () => {
  test("a fault setting changed through one replica applies to the other's charges within its cache time, without a restart", async () => {
    const [a, b] = clients as [GrpcClient<typeof PaymentsService>, GrpcClient<typeof PaymentsService>];
    expect((await b.charge(await chargeRequest(), asService)).payment?.status).toBe(PaymentStatus.CAPTURED);
    try {
      await a.setFaultSettings({ settings: { failureRate: 1, addedLatencyMs: 0 } }, asAdmin);
      const changedAt = performance.now();
      expect((await a.charge(await chargeRequest(), asService)).payment?.status).toBe(PaymentStatus.FAILED);
      const failed = await eventually(
        async () => {
          const { payment } = await b.charge(await chargeRequest(), asService);
          return payment?.status === PaymentStatus.FAILED ? payment : undefined;
        },
        { what: "replica b to fail charges" },
      );
      expect(performance.now() - changedAt).toBeLessThan(1_000);
      expect(failed.failureReason).toBe("The payment processor is unavailable; no money was taken.");
      expect((await b.getFaultSettings({}, asAdmin)).settings?.failureRate).toBe(1);
    } finally {
      await a.setFaultSettings({ settings: { failureRate: 0, addedLatencyMs: 0 } }, asAdmin);
    }
  });

  test("the same charge sent to both replicas at once is charged once", async () => {
    const request = await chargeRequest();
    try {
      await clients[0]!.setFaultSettings({ settings: { failureRate: 0, addedLatencyMs: 200 } }, asAdmin);
      await Bun.sleep(300); // both replicas now run with the latency
      const results = await Promise.all(Array.from({ length: 10 }, (_, i) => clients[i % 2]!.charge(request, asService)));
      expect(new Set(results.map((r) => r.payment?.id)).size).toBe(1);
      const [rows] = await sql`select count(*)::int as n from payments where idempotency_key = ${request.idempotencyKey}`;
      expect(rows?.n).toBe(1);
      const [entries] = await sql`select count(*)::int as n from ledger_entries where payment_id = ${results[0]!.payment!.id}`;
      expect(entries?.n).toBe(1);
    } finally {
      await clients[0]!.setFaultSettings({ settings: { failureRate: 0, addedLatencyMs: 0 } }, asAdmin);
    }
  });

  test("a card tokenized on one replica is charged on the other; captures are published to RabbitMQ, and neither process ever logs the card number", async () => {
    const { payment } = await clients[1]!.charge(await chargeRequest(0), asService);
    expect(payment?.status).toBe(PaymentStatus.CAPTURED);
    await eventually(async () => captured.includes(payment!.id), { what: "the PaymentCaptured event" });
    await eventually(
      async () => {
        const [left] = await sql`select count(*)::int as n from outbox where published_at is null`;
        return left?.n === 0 ? true : undefined;
      },
      { what: "the outbox to be drained" },
    );
    for (const r of replicas) {
      const output = r.child.output();
      expect(output).toContain("charged");
      expect(output.replaceAll(" ", "")).not.toContain("4242424242424242");
    }
  });
});
