import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { status } from "@grpc/grpc-js";
import { RpcError } from "@bazaar/platform/errors";
import type { GrpcClient } from "@bazaar/platform/grpc/client";
import { configureLogging } from "@bazaar/platform/log";
import { Broker, on } from "@bazaar/platform/messaging/broker";
import { events } from "@bazaar/platform/messaging/events";
import { OutboxRelay } from "@bazaar/platform/messaging/outbox";
import { registry } from "@bazaar/platform/metrics";
import { findCardData } from "@bazaar/testkit/card-data";
import { eventually } from "@bazaar/testkit/eventually";
import { type BearerAuth, bearer, rpcError, startTestGrpcServer, type TestGrpcServerWithIssuer, uniqueName } from "@bazaar/testkit/fixtures";
import { type ScopedVhost, TestScope } from "@bazaar/testkit/test-scope";
import { PaymentsService, PaymentStatus } from "@bazaar/proto/bazaar/payments/v1/payments_pb";
import * as schema from "../src/db/schema.ts";
import { FaultSettingsStore, noFaults } from "../src/fault-settings.ts";
import { type PaymentsDatabase, PaymentStore } from "../src/payments.ts";
import { declineReasons, processorReferences, SimulatedProcessor } from "../src/processor.ts";
import { paymentsAccess, paymentsHandlers } from "../src/rpc.ts";

// The payments handlers behind a real gRPC server, on a database and RabbitMQ vhost of this
// run's own, with the outbox relayed to a consumer that records every Payment* event.
const scope = new TestScope();
let vhost: ScopedVhost;
let db: PaymentsDatabase;
let broker: Broker;
let relay: OutboxRelay;
let faults: FaultSettingsStore;
let grpc: TestGrpcServerWithIssuer<typeof PaymentsService>;
let client: GrpcClient<typeof PaymentsService>;
// The same service with tokens that expire after a moment, on the same database.
const shortTtlMs = 300;
let shortLived: TestGrpcServerWithIssuer<typeof PaymentsService>;
const owner = { id: crypto.randomUUID(), auth: bearer("") };
const stranger = { id: crypto.randomUUID(), auth: bearer("") };
let asService: BearerAuth;
let asAdmin: BearerAuth;
const adminId = crypto.randomUUID();

interface SeenEvent {
  routingKey: string;
  paymentId: string;
  orderId: string;
  amountMinor: bigint;
  reason?: string;
}
const seen: SeenEvent[] = [];
// How far the processor's clock is ahead of the real one (for cards that expire between retries).
let clockAheadMs = 0;

const expiryYear = new Date().getUTCFullYear() + 3;
// Security codes with a leading zero, so that the card-data scan can tell them from anything else.
const cards = {
  good: { number: "4242 4242 4242 4242", expiryMonth: 12, expiryYear, cvc: "0917" },
  declined: { number: "4000 0000 0000 0002", expiryMonth: 12, expiryYear, cvc: "0386" },
  insufficient: { number: "4000000000009995", expiryMonth: 12, expiryYear, cvc: "0452" },
  // Any other valid number succeeds (a Mastercard test number).
  other: { number: "5555 5555 5555 4444", expiryMonth: 1, expiryYear, cvc: "0761" },
};
type CardInit = (typeof cards)["good"];

beforeAll(async () => {
  configureLogging("payments", "warn");
  vhost = await scope.vhost();
  db = await scope.database("payments", schema);
  broker = scope.add(await Broker.connect(vhost.url, { service: "payments-test" }), (b) => b.close());
  const record = (routingKey: string) => async (e: { paymentId: string; orderId: string; amount?: { amountMinor: bigint }; reason?: string }) => {
    seen.push({ routingKey, paymentId: e.paymentId, orderId: e.orderId, amountMinor: e.amount?.amountMinor ?? 0n, reason: e.reason });
  };
  await broker.consume({
    queue: "payments-test.events",
    handlers: [
      on(events.paymentCaptured, record(events.paymentCaptured.routingKey)),
      on(events.paymentFailed, record(events.paymentFailed.routingKey)),
      on(events.paymentRefunded, record(events.paymentRefunded.routingKey)),
    ],
  });
  relay = scope.add(new OutboxRelay(db.db, broker, { pollMs: 200 }).start(), (r) => r.stop());
  faults = new FaultSettingsStore(db, { cacheMs: 1000 });
  const processor = new SimulatedProcessor({ now: () => new Date(Date.now() + clockAheadMs) });
  const options = { requestHashSecret: "payments-test-hash-secret", paymentMethodTtlMs: 60_000, outbox: relay };
  const store = new PaymentStore(db, processor, faults, options);
  grpc = scope.add(await startTestGrpcServer({ service: PaymentsService, impl: paymentsHandlers(store, faults), access: paymentsAccess }), (g) => g.stop());
  client = grpc.client;
  const shortStore = new PaymentStore(db, processor, faults, { ...options, paymentMethodTtlMs: shortTtlMs });
  shortLived = scope.add(
    await startTestGrpcServer({ service: PaymentsService, impl: paymentsHandlers(shortStore, faults), access: paymentsAccess, issuer: grpc.issuer }),
    (g) => g.stop(),
  );
  owner.auth = await grpc.auth({ sub: owner.id, roles: ["customer"] });
  stranger.auth = await grpc.auth({ sub: stranger.id, roles: ["customer"] });
  asService = await grpc.auth({ sub: "service:orders", roles: ["service"] });
  asAdmin = await grpc.auth({ sub: adminId, roles: ["customer", "admin"] });
}, 60_000);

afterAll(() => scope.cleanup(), 60_000);

// Every test starts with a well-behaved processor.
afterEach(async () => {
  clockAheadMs = 0;
  await faults.set(noFaults, "test");
});

/** A ChargeRequest as plain data. */
interface ChargeInit {
  idempotencyKey: string;
  orderId: string;
  userId: string;
  amount?: { currencyCode: string; amountMinor: bigint };
  paymentMethodToken: string;
  card?: CardInit;
}

/** Tokenizes a card as its user (the owner unless said otherwise); returns the token. */
async function tokenize(card: CardInit = cards.good, auth: BearerAuth = owner.auth): Promise<string> {
  const { paymentMethod } = await client.createPaymentMethod({ card }, auth);
  return paymentMethod!.token;
}

/** A charge of the owner's, with a fresh token of `card` (the good one by default). */
async function chargeRequest(over: Partial<ChargeInit> = {}, card: CardInit = cards.good): Promise<ChargeInit> {
  return {
    idempotencyKey: uniqueName("charge"),
    orderId: crypto.randomUUID(),
    userId: owner.id,
    amount: { currencyCode: "USD", amountMinor: 2599n },
    paymentMethodToken: over.paymentMethodToken ?? (await tokenize(card)),
    ...over,
  };
}

/** Charge calls the processor has answered so far (a counter the processor keeps as a metric). */
async function processorCharges(): Promise<number> {
  const values = (await registry.getSingleMetric("bazaar_payments_processor_calls_total")?.get())?.values ?? [];
  return values.filter((v) => v.labels.operation === "charge").reduce((n, v) => n + v.value, 0);
}

async function rowCount(
  table: "payments" | "ledger_entries" | "refunds" | "outbox" | "payment_methods",
  where = "true",
  params: string[] = [],
): Promise<number> {
  const rows = await db.sql.unsafe(`select count(*)::int as n from ${table} where ${where}`, params);
  return Number(rows[0]?.n);
}

async function ledgerOf(paymentId: string): Promise<{ kind: string; amount_minor: string; currency: string }[]> {
  return db.sql`select kind, amount_minor::text, currency from ledger_entries where payment_id = ${paymentId} order by created_at, kind`;
}

async function totals(): Promise<Record<string, number>> {
  return {
    payments: await rowCount("payments"),
    ledger: await rowCount("ledger_entries"),
    refunds: await rowCount("refunds"),
    outbox: await rowCount("outbox"),
  };
}

describe("Charge", () => {
  test("a good card is CAPTURED, with one CHARGE ledger entry and a PaymentCaptured event", async () => {
    const request = await chargeRequest();
    const { payment } = await client.charge(request, asService);
    expect(payment?.status).toBe(PaymentStatus.CAPTURED);
    expect(payment?.failureReason).toBe("");
    expect(payment?.cardLast4).toBe("4242");
    expect(payment?.orderId).toBe(request.orderId!);
    expect(payment?.userId).toBe(owner.id);
    expect(payment?.amount?.amountMinor).toBe(2599n);
    expect(payment?.amount?.currencyCode).toBe("USD");
    expect(await ledgerOf(payment!.id)).toEqual([{ kind: "CHARGE", amount_minor: "2599", currency: "USD" }]);
    const event = await eventually(() => seen.find((e) => e.paymentId === payment!.id), { what: "PaymentCaptured" });
    expect(event).toMatchObject({ routingKey: "payment.captured.v1", orderId: request.orderId!, amountMinor: 2599n });
  });

  test("any other valid card number is captured too", async () => {
    const { payment } = await client.charge(await chargeRequest({}, cards.other), asService);
    expect(payment?.status).toBe(PaymentStatus.CAPTURED);
    expect(payment?.cardLast4).toBe("4444");
  });

  test("a declined card is a FAILED payment with the reason (not an error), no ledger entry, and a PaymentFailed event", async () => {
    for (const [card, reason] of [
      [cards.declined, declineReasons.declined],
      [cards.insufficient, declineReasons.insufficientFunds],
    ] as const) {
      const { payment } = await client.charge(await chargeRequest({}, card), asService);
      expect(payment?.status).toBe(PaymentStatus.FAILED);
      expect(payment?.failureReason).toBe(reason);
      expect(await ledgerOf(payment!.id)).toEqual([]);
      const event = await eventually(() => seen.find((e) => e.paymentId === payment!.id), { what: "PaymentFailed" });
      expect(event.routingKey).toBe("payment.failed.v1");
      expect(event.reason).toBe(reason);
    }
    expect(declineReasons).toMatchObject({ declined: "Your card was declined.", insufficientFunds: "Your card has insufficient funds." });
  });

  test("the same key and request three times returns the one payment, and the processor is called once", async () => {
    const request = await chargeRequest();
    const calls = await processorCharges();
    const outboxBefore = await rowCount("outbox");
    const ids = [];
    for (let i = 0; i < 3; i++) ids.push((await client.charge(request, asService)).payment!.id);
    expect(new Set(ids).size).toBe(1);
    expect(await processorCharges()).toBe(calls + 1);
    expect(await rowCount("payments", "idempotency_key = $1", [request.idempotencyKey!])).toBe(1);
    expect(await ledgerOf(ids[0]!)).toHaveLength(1);
    expect(await rowCount("outbox")).toBe(outboxBefore + 1);
  });

  test("a declined charge retried with its key returns the same FAILED payment without asking the processor again", async () => {
    const request = await chargeRequest({}, cards.declined);
    const first = (await client.charge(request, asService)).payment!;
    const calls = await processorCharges();
    const again = (await client.charge(request, asService)).payment!;
    expect(again.id).toBe(first.id);
    expect(again.status).toBe(PaymentStatus.FAILED);
    expect(await processorCharges()).toBe(calls);
  });

  test("the same key with a different amount, token or order is FAILED_PRECONDITION and writes nothing", async () => {
    const request = await chargeRequest();
    const original = (await client.charge(request, asService)).payment!;
    const before = await totals();
    for (const changed of [
      { ...request, amount: { currencyCode: "USD", amountMinor: 2600n } },
      { ...request, paymentMethodToken: await tokenize(cards.other) },
      { ...request, orderId: crypto.randomUUID() },
    ]) {
      const err = await rpcError(client.charge(changed, asService));
      expect(err.code).toBe(status.FAILED_PRECONDITION);
      expect(err.message).toContain(`idempotency key ${request.idempotencyKey} was used for a different request`);
    }
    expect(await totals()).toEqual(before);
    const [row] = await db.sql`select amount_minor::int as amount from payments where id = ${original.id}`;
    expect(row?.amount).toBe(2599);
  });

  test("a retry after the card expired still returns its payment; a card that expired since it was tokenized is declined as expired; an expired card is not tokenized", async () => {
    const today = new Date();
    const expiring = { ...cards.good, expiryMonth: today.getUTCMonth() + 1, expiryYear: today.getUTCFullYear() };
    const request = await chargeRequest({}, expiring);
    const pending = await chargeRequest({}, expiring);
    const { payment } = await client.charge(request, asService);
    expect(payment?.status).toBe(PaymentStatus.CAPTURED);
    clockAheadMs = 40 * 24 * 3600 * 1000;
    const again = await client.charge(request, asService);
    expect(again.payment?.id).toBe(payment!.id);
    const late = await client.charge(pending, asService);
    expect(late.payment?.status).toBe(PaymentStatus.FAILED);
    expect(late.payment?.failureReason).toBe("Your card has expired.");
    const methodsBefore = await rowCount("payment_methods");
    const err = await rpcError(client.createPaymentMethod({ card: expiring }, owner.auth));
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.message).toMatch(/^card\.expiry_(month|year): the card expired in /);
    expect(await rowCount("payment_methods")).toBe(methodsBefore);
  });

  test("10 concurrent charges with the same key: one processor call, one payment row, one ledger entry, one event", async () => {
    // A slow processor keeps the first charge inside its call while the other nine arrive.
    await faults.set({ failureRate: 0, addedLatencyMs: 200 }, "test");
    const request = await chargeRequest();
    const calls = await processorCharges();
    const outboxBefore = await rowCount("outbox");
    const results = await Promise.all(Array.from({ length: 10 }, () => client.charge(request, asService)));
    const ids = new Set(results.map((r) => r.payment!.id));
    expect(ids.size).toBe(1);
    expect(results.every((r) => r.payment?.status === PaymentStatus.CAPTURED)).toBe(true);
    expect(await processorCharges()).toBe(calls + 1);
    expect(await rowCount("payments", "idempotency_key = $1", [request.idempotencyKey!])).toBe(1);
    expect(await ledgerOf([...ids][0]!)).toHaveLength(1);
    expect(await rowCount("outbox")).toBe(outboxBefore + 1);
  });

  test("a charge whose caller gives up during the processor call stops there and writes nothing; the retry with its key charges once", async () => {
    await faults.set({ failureRate: 0, addedLatencyMs: 1000 }, "test");
    const request = await chargeRequest();
    const calls = await processorCharges();
    const err = await rpcError(client.charge(request, { ...asService, timeoutMs: 200 }));
    expect(err.code).toBe(status.DEADLINE_EXCEEDED);
    await Bun.sleep(100);
    expect(await rowCount("payments", "order_id = $1", [request.orderId!])).toBe(0);
    await faults.set(noFaults, "test");
    // Had the first attempt gone on, this retry would wait for its lock and get its payment.
    const started = performance.now();
    const { payment } = await client.charge(request, asService);
    expect(performance.now() - started).toBeLessThan(500);
    expect(payment?.status).toBe(PaymentStatus.CAPTURED);
    expect(await processorCharges()).toBe(calls + 1);
    expect(await rowCount("payments", "order_id = $1", [request.orderId!])).toBe(1);
  });
});

describe("CreatePaymentMethod", () => {
  test("a valid card gives an opaque token, its last four digits, brand and expiry; payments keeps only the token's hash and the processor's reference", async () => {
    const before = Date.now();
    const { paymentMethod } = await client.createPaymentMethod({ card: cards.declined }, owner.auth);
    expect(paymentMethod?.token).toMatch(/^pm_[A-Za-z0-9_-]{43}$/);
    expect(paymentMethod?.cardLast4).toBe("0002");
    expect(paymentMethod?.brand).toBe("visa");
    const expires = Number(paymentMethod!.expireTime!.seconds) * 1000;
    // 60 s in this test's store, by the database's clock (which may be a little off this one's).
    expect(expires).toBeGreaterThan(before + 50_000);
    expect(expires).toBeLessThan(Date.now() + 70_000);
    const rows = await db.sql`select user_id, processor_reference, card_last4, card_brand, card_expiry_month, card_expiry_year, payment_id, token_hash
      from payment_methods where card_last4 = '0002' and user_id = ${owner.id} order by created_at desc limit 1`;
    expect(rows[0]).toMatchObject({
      user_id: owner.id,
      processor_reference: processorReferences.declined,
      card_last4: "0002",
      card_brand: "visa",
      card_expiry_month: 12,
      card_expiry_year: expiryYear,
      payment_id: null,
    });
    expect(rows[0]?.token_hash).toBe(new Bun.CryptoHasher("sha256").update(paymentMethod!.token).digest("hex"));
    // Two tokens of one card are different.
    expect(await tokenize(cards.declined)).not.toBe(paymentMethod!.token);
  });

  test("a malformed card is INVALID_ARGUMENT naming each field, stores nothing, and never echoes the number", async () => {
    const before = await rowCount("payment_methods");
    const card = cards.good;
    const badCards: [string, CardInit | undefined][] = [
      ["card", undefined],
      ["card.number", { ...card, number: "4242 4242 424" }],
      ["card.number", { ...card, number: "4242-4242-4242-4242" }],
      ["card.number", { ...card, number: "4242 4242 4242 4241" }],
      ["card.number", { ...card, number: "4".repeat(20) }],
      ["card.expiry_month", { ...card, expiryMonth: 0 }],
      ["card.expiry_month", { ...card, expiryMonth: 13 }],
      ["card.expiry_year", { ...card, expiryYear: new Date().getUTCFullYear() - 1 }],
      ["card.expiry_year", { ...card, expiryYear: 27 }],
      ["card.cvc", { ...card, cvc: "12" }],
      ["card.cvc", { ...card, cvc: "12345" }],
      ["card.cvc", { ...card, cvc: "abc" }],
    ];
    for (const [field, bad] of badCards) {
      const err = await rpcError(client.createPaymentMethod({ card: bad }, owner.auth));
      expect({ field, code: err.code }).toEqual({ field, code: status.INVALID_ARGUMENT });
      expect(err.message.startsWith(`${field}: `)).toBe(true);
      expect(err.violations.map((v) => v.field)).toContain(field);
      expect(err.message.replaceAll(" ", "")).not.toContain("42424242");
    }
    expect(await rowCount("payment_methods")).toBe(before);
  });

  test("only a signed-in user tokenizes, for themselves: no token is UNAUTHENTICATED, a service is PERMISSION_DENIED", async () => {
    const before = await rowCount("payment_methods");
    expect((await rpcError(client.createPaymentMethod({ card: cards.good }))).code).toBe(status.UNAUTHENTICATED);
    expect((await rpcError(client.createPaymentMethod({ card: cards.good }, asService))).code).toBe(status.PERMISSION_DENIED);
    expect(await rowCount("payment_methods")).toBe(before);
  });
});

describe("payment method tokens", () => {
  test("a token pays once: a second charge with it (another key) is FAILED_PRECONDITION PAYMENT_METHOD_USED and charges nothing; the retry with the first key still gets its payment", async () => {
    const request = await chargeRequest();
    const { payment } = await client.charge(request, asService);
    expect(payment?.status).toBe(PaymentStatus.CAPTURED);
    const calls = await processorCharges();
    const before = await totals();
    const second = await rpcError(client.charge({ ...request, idempotencyKey: uniqueName("charge"), orderId: crypto.randomUUID() }, asService));
    expect(second.code).toBe(status.FAILED_PRECONDITION);
    expect(second.message).toBe("payment_method_token: was used for a charge already; a token pays once, so tokenize the card again");
    expect(second.preconditions).toEqual([{ type: "PAYMENT_METHOD_USED", subject: "payment_method_token", description: expect.any(String) }]);
    expect(await totals()).toEqual(before);
    expect(await processorCharges()).toBe(calls);
    expect((await client.charge(request, asService)).payment?.id).toBe(payment!.id);
    const [row] = await db.sql`select payment_id from payment_methods where payment_id = ${payment!.id}`;
    expect(row?.payment_id).toBe(payment!.id);
  });

  test("a declined charge uses its token up too", async () => {
    const request = await chargeRequest({}, cards.declined);
    expect((await client.charge(request, asService)).payment?.status).toBe(PaymentStatus.FAILED);
    const err = await rpcError(client.charge({ ...request, idempotencyKey: uniqueName("charge") }, asService));
    expect(err.preconditions[0]?.type).toBe("PAYMENT_METHOD_USED");
  });

  test("another user's token is refused as unknown (PAYMENT_METHOD_NOT_FOUND), nothing is charged, and its owner can still use it", async () => {
    const token = await tokenize(cards.good, stranger.auth);
    const calls = await processorCharges();
    const before = await totals();
    for (const paymentMethodToken of [token, `pm_${"A".repeat(43)}`]) {
      const err = await rpcError(client.charge(await chargeRequest({ paymentMethodToken }), asService));
      expect(err.code).toBe(status.FAILED_PRECONDITION);
      expect(err.message).toBe("payment_method_token: no payment method of this user has this token; tokenize the card again (CreatePaymentMethod)");
      expect(err.preconditions.map((v) => v.type)).toEqual(["PAYMENT_METHOD_NOT_FOUND"]);
    }
    expect(await totals()).toEqual(before);
    expect(await processorCharges()).toBe(calls);
    const { payment } = await client.charge(await chargeRequest({ paymentMethodToken: token, userId: stranger.id }), asService);
    expect(payment?.status).toBe(PaymentStatus.CAPTURED);
  });

  test("a token expires: charged after its time it is FAILED_PRECONDITION PAYMENT_METHOD_EXPIRED and charges nothing", async () => {
    const { paymentMethod } = await shortLived.client.createPaymentMethod({ card: cards.good }, owner.auth);
    const expiresAt = Number(paymentMethod!.expireTime!.seconds) * 1000 + paymentMethod!.expireTime!.nanos / 1e6;
    expect(expiresAt - Date.now()).toBeLessThanOrEqual(shortTtlMs + 1_000);
    // Until then it is good (another token, issued at the same moment, is charged).
    const fresh = await shortLived.client.createPaymentMethod({ card: cards.good }, owner.auth);
    expect((await client.charge(await chargeRequest({ paymentMethodToken: fresh.paymentMethod!.token }), asService)).payment?.status).toBe(
      PaymentStatus.CAPTURED,
    );
    // The expiry is a recorded time, not an event: wait until it has passed (and a little, for clocks).
    await Bun.sleep(Math.max(0, expiresAt - Date.now()) + 100);
    const before = await totals();
    const err = await rpcError(client.charge(await chargeRequest({ paymentMethodToken: paymentMethod!.token }), asService));
    expect(err.code).toBe(status.FAILED_PRECONDITION);
    expect(err.message).toBe("payment_method_token: has expired; tokenize the card again (CreatePaymentMethod)");
    expect(err.preconditions.map((v) => v.type)).toEqual(["PAYMENT_METHOD_EXPIRED"]);
    expect(await totals()).toEqual(before);
  });

  test("two charges racing with one token under different keys: one payment, the other refused", async () => {
    await faults.set({ failureRate: 0, addedLatencyMs: 200 }, "test");
    const token = await tokenize();
    const requests = await Promise.all([chargeRequest({ paymentMethodToken: token }), chargeRequest({ paymentMethodToken: token })]);
    const results = await Promise.allSettled(requests.map((r) => client.charge(r, asService)));
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    const refused = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
    expect(refused?.reason).toBeInstanceOf(RpcError);
    expect((refused!.reason as RpcError).preconditions[0]?.type).toBe("PAYMENT_METHOD_USED");
    expect(await rowCount("payments", "order_id = any($1::uuid[])", [`{${requests.map((r) => r.orderId).join(",")}}`])).toBe(1);
  });

  test("the deprecated card field is refused with INVALID_ARGUMENT naming payment_method_token, and charges nothing", async () => {
    const before = await totals();
    const calls = await processorCharges();
    for (const request of [await chargeRequest({ card: cards.good }), { ...(await chargeRequest()), paymentMethodToken: "", card: cards.good }]) {
      const err = await rpcError(client.charge(request, asService));
      expect(err.code).toBe(status.INVALID_ARGUMENT);
      expect(err.message).toBe("card: is no longer accepted: tokenize the card with CreatePaymentMethod and send payment_method_token instead");
      expect(err.violations.map((v) => v.field)).toEqual(["card"]);
    }
    expect(await totals()).toEqual(before);
    expect(await processorCharges()).toBe(calls);
  });

  test("without a token a charge can only be a replay: it returns the payment its key made; a new one is INVALID_ARGUMENT", async () => {
    const request = await chargeRequest();
    const { payment } = await client.charge(request, asService);
    const replay = await client.charge({ ...request, paymentMethodToken: "" }, asService);
    expect(replay.payment?.id).toBe(payment!.id);
    // A replay must still be the same charge: another amount under the key is the usual refusal.
    const other = await rpcError(client.charge({ ...request, paymentMethodToken: "", amount: { currencyCode: "USD", amountMinor: 1n } }, asService));
    expect(other.code).toBe(status.FAILED_PRECONDITION);
    const before = await totals();
    const fresh = await rpcError(client.charge({ ...(await chargeRequest()), paymentMethodToken: "" }, asService));
    expect(fresh.code).toBe(status.INVALID_ARGUMENT);
    expect(fresh.violations.map((v) => v.field)).toEqual(["payment_method_token"]);
    expect(await totals()).toEqual(before);
  });
});

describe("Refund", () => {
  test("a captured payment is REFUNDED, with a REFUND ledger entry of minus the amount and a PaymentRefunded event", async () => {
    const { payment } = await client.charge(await chargeRequest({ amount: { currencyCode: "EUR", amountMinor: 4200n } }), asService);
    const { payment: refunded } = await client.refund({ idempotencyKey: uniqueName("refund"), paymentId: payment!.id, reason: "order cancelled" }, asService);
    expect(refunded?.status).toBe(PaymentStatus.REFUNDED);
    expect(refunded?.id).toBe(payment!.id);
    expect(await ledgerOf(payment!.id)).toEqual([
      { kind: "CHARGE", amount_minor: "4200", currency: "EUR" },
      { kind: "REFUND", amount_minor: "-4200", currency: "EUR" },
    ]);
    const [balance] = await db.sql`select sum(amount_minor)::int as n from ledger_entries where payment_id = ${payment!.id}`;
    expect(balance?.n).toBe(0);
    const event = await eventually(() => seen.find((e) => e.paymentId === payment!.id && e.routingKey === "payment.refunded.v1"), { what: "PaymentRefunded" });
    expect(event.amountMinor).toBe(4200n);
    expect((await client.getPayment({ id: payment!.id }, asService)).payment?.status).toBe(PaymentStatus.REFUNDED);
  });

  test("a refund retried with its key, or sent again with another key, returns the refunded payment and refunds once", async () => {
    const { payment } = await client.charge(await chargeRequest(), asService);
    const request = { idempotencyKey: uniqueName("refund"), paymentId: payment!.id, reason: "changed my mind" };
    const outboxBefore = await rowCount("outbox");
    await client.refund(request, asService);
    const retried = await client.refund(request, asService);
    const otherKey = await client.refund({ ...request, idempotencyKey: uniqueName("refund") }, asService);
    expect(retried.payment?.status).toBe(PaymentStatus.REFUNDED);
    expect(otherKey.payment?.status).toBe(PaymentStatus.REFUNDED);
    expect(await ledgerOf(payment!.id)).toHaveLength(2);
    expect(await rowCount("refunds", "payment_id = $1", [payment!.id])).toBe(1);
    expect(await rowCount("outbox")).toBe(outboxBefore + 1);
  });

  test("concurrent refunds of one payment with different keys refund it once", async () => {
    const { payment } = await client.charge(await chargeRequest(), asService);
    const results = await Promise.all(
      Array.from({ length: 5 }, () => client.refund({ idempotencyKey: uniqueName("refund"), paymentId: payment!.id, reason: "" }, asService)),
    );
    expect(results.every((r) => r.payment?.status === PaymentStatus.REFUNDED)).toBe(true);
    expect(await ledgerOf(payment!.id)).toHaveLength(2);
    expect(await rowCount("refunds", "payment_id = $1", [payment!.id])).toBe(1);
  });

  test("a refund key reused for another payment is FAILED_PRECONDITION and refunds nothing", async () => {
    const first = (await client.charge(await chargeRequest(), asService)).payment!;
    const second = (await client.charge(await chargeRequest(), asService)).payment!;
    const key = uniqueName("refund");
    await client.refund({ idempotencyKey: key, paymentId: first.id, reason: "" }, asService);
    const err = await rpcError(client.refund({ idempotencyKey: key, paymentId: second.id, reason: "" }, asService));
    expect(err.code).toBe(status.FAILED_PRECONDITION);
    expect(err.message).toContain(`idempotency key ${key} was used for a different request`);
    expect((await client.getPayment({ id: second.id }, asService)).payment?.status).toBe(PaymentStatus.CAPTURED);
  });

  test("a FAILED payment cannot be refunded (nothing was captured), and an unknown one is NOT_FOUND", async () => {
    const { payment } = await client.charge(await chargeRequest({}, cards.declined), asService);
    const before = await totals();
    const err = await rpcError(client.refund({ idempotencyKey: uniqueName("refund"), paymentId: payment!.id, reason: "" }, asService));
    expect(err.code).toBe(status.FAILED_PRECONDITION);
    expect(err.message).toContain("nothing was captured");
    const missing = await rpcError(client.refund({ idempotencyKey: uniqueName("refund"), paymentId: crypto.randomUUID(), reason: "" }, asService));
    expect(missing.code).toBe(status.NOT_FOUND);
    expect(await totals()).toEqual(before);
  });
});

describe("GetPayment", () => {
  test("the payer, a service and an admin can read a payment; another user gets NOT_FOUND, as for an unknown id", async () => {
    const { payment } = await client.charge(await chargeRequest(), asService);
    for (const auth of [owner.auth, asService, asAdmin]) {
      expect((await client.getPayment({ id: payment!.id }, auth)).payment?.id).toBe(payment!.id);
    }
    const hidden = await rpcError(client.getPayment({ id: payment!.id }, stranger.auth));
    expect(hidden.code).toBe(status.NOT_FOUND);
    const unknownId = crypto.randomUUID();
    const unknown = await rpcError(client.getPayment({ id: unknownId }, owner.auth));
    expect(unknown.code).toBe(status.NOT_FOUND);
    expect(hidden.message).toBe(`no payment has id ${payment!.id}`);
    expect(unknown.message).toBe(`no payment has id ${unknownId}`);
    expect((await rpcError(client.getPayment({ id: payment!.id }))).code).toBe(status.UNAUTHENTICATED);
  });
});

describe("fault settings", () => {
  test("failure_rate 1: every charge, even of the always-good card, is FAILED with the processor's reason and no ledger entry", async () => {
    await client.setFaultSettings({ settings: { failureRate: 1, addedLatencyMs: 0 } }, asAdmin);
    for (const card of [cards.good, cards.other, cards.good]) {
      const { payment } = await client.charge(await chargeRequest({}, card), asService);
      expect(payment?.status).toBe(PaymentStatus.FAILED);
      expect(payment?.failureReason).toBe("The payment processor is unavailable; no money was taken.");
      expect(await ledgerOf(payment!.id)).toEqual([]);
    }
  });

  test("added latency makes a charge take at least added_latency_ms", async () => {
    await client.setFaultSettings({ settings: { failureRate: 0, addedLatencyMs: 500 } }, asAdmin);
    const started = performance.now();
    const { payment } = await client.charge(await chargeRequest(), asService);
    expect(payment?.status).toBe(PaymentStatus.CAPTURED);
    expect(performance.now() - started).toBeGreaterThanOrEqual(500);
    await client.setFaultSettings({ settings: { failureRate: 0, addedLatencyMs: 0 } }, asAdmin);
    const fastStarted = performance.now();
    await client.charge(await chargeRequest(), asService);
    expect(performance.now() - fastStarted).toBeLessThan(500);
  });

  test("a change applies at once, without a restart, here and (within a second) on another replica", async () => {
    const otherReplica = new FaultSettingsStore(db, { cacheMs: 1000 });
    expect(await otherReplica.current()).toEqual(noFaults); // now cached there
    const { settings } = await client.setFaultSettings({ settings: { failureRate: 0.25, addedLatencyMs: 50 } }, asAdmin);
    expect(settings).toMatchObject({ failureRate: 0.25, addedLatencyMs: 50 });
    expect((await client.getFaultSettings({}, asAdmin)).settings).toMatchObject({ failureRate: 0.25, addedLatencyMs: 50 });
    expect(await faults.current()).toEqual({ failureRate: 0.25, addedLatencyMs: 50 });
    const changedAt = performance.now();
    await eventually(async () => (await otherReplica.current()).failureRate === 0.25, { what: "the other replica to see the change", timeoutMs: 2_000 });
    // The other replica's cache lasts 1 s; the rest is polling and a busy machine's slack.
    expect(performance.now() - changedAt).toBeLessThan(1_500);
    const [row] = await db.sql`select updated_by from fault_settings`;
    expect(row?.updated_by).toBe(adminId);
  });

  test("only admins read or change them: a customer and a service are PERMISSION_DENIED, no token UNAUTHENTICATED", async () => {
    const change = { settings: { failureRate: 1, addedLatencyMs: 10 } };
    for (const auth of [owner.auth, asService]) {
      expect((await rpcError(client.setFaultSettings(change, auth))).code).toBe(status.PERMISSION_DENIED);
      expect((await rpcError(client.getFaultSettings({}, auth))).code).toBe(status.PERMISSION_DENIED);
    }
    expect((await rpcError(client.setFaultSettings(change))).code).toBe(status.UNAUTHENTICATED);
    expect(await faults.read()).toEqual(noFaults);
  });
});

describe("access", () => {
  test("a customer cannot Charge or Refund (PERMISSION_DENIED) and an anonymous caller is UNAUTHENTICATED; nothing is written", async () => {
    const { payment } = await client.charge(await chargeRequest(), asService);
    const before = await totals();
    const denied = await rpcError(client.charge(await chargeRequest(), owner.auth));
    expect(denied.code).toBe(status.PERMISSION_DENIED);
    expect(denied.message).toContain("service");
    expect((await rpcError(client.charge(await chargeRequest(), asAdmin))).code).toBe(status.PERMISSION_DENIED);
    expect((await rpcError(client.charge(await chargeRequest()))).code).toBe(status.UNAUTHENTICATED);
    const refund = { idempotencyKey: uniqueName("refund"), paymentId: payment!.id, reason: "" };
    expect((await rpcError(client.refund(refund, owner.auth))).code).toBe(status.PERMISSION_DENIED);
    expect((await rpcError(client.refund(refund))).code).toBe(status.UNAUTHENTICATED);
    expect(await totals()).toEqual(before);
  });
});

describe("validation", () => {
  const badCharges: [string, Partial<ChargeInit>][] = [
    ["idempotency_key", { idempotencyKey: "short" }],
    ["idempotency_key", { idempotencyKey: "k".repeat(129) }],
    ["idempotency_key", { idempotencyKey: "has a space in it" }],
    ["order_id", { orderId: "" }],
    ["order_id", { orderId: "order-1" }],
    ["user_id", { userId: "not-a-uuid" }],
    ["amount", { amount: undefined }],
    ["amount.amount_minor", { amount: { currencyCode: "USD", amountMinor: 0n } }],
    ["amount.amount_minor", { amount: { currencyCode: "USD", amountMinor: -100n } }],
    ["amount.amount_minor", { amount: { currencyCode: "USD", amountMinor: 100_000_001n } }],
    ["amount.currency_code", { amount: { currencyCode: "usd", amountMinor: 100n } }],
    ["amount.currency_code", { amount: { currencyCode: "", amountMinor: 100n } }],
    ["payment_method_token", { paymentMethodToken: "tok_visa" }],
    ["payment_method_token", { paymentMethodToken: `pm_${"a".repeat(42)}` }],
    ["payment_method_token", { paymentMethodToken: `pm_${"a".repeat(42)}=` }],
  ];

  test("every malformed Charge field is INVALID_ARGUMENT naming it, and no row is written", async () => {
    const before = await totals();
    const base = await chargeRequest();
    for (const [field, change] of badCharges) {
      const err = await rpcError(client.charge({ ...base, ...change }, asService));
      expect({ field, code: err.code }).toEqual({ field, code: status.INVALID_ARGUMENT });
      expect(err.message.startsWith(`${field}: `)).toBe(true);
    }
    expect(await totals()).toEqual(before);
  });

  test("malformed Refund, GetPayment and SetFaultSettings requests are INVALID_ARGUMENT naming the field, and change nothing", async () => {
    const { payment } = await client.charge(await chargeRequest(), asService);
    const before = await totals();
    const refund = { idempotencyKey: uniqueName("refund"), paymentId: payment!.id, reason: "" };
    const cases: [string, Promise<unknown>][] = [
      ["idempotency_key", client.refund({ ...refund, idempotencyKey: "" }, asService)],
      ["payment_id", client.refund({ ...refund, paymentId: "" }, asService)],
      ["payment_id", client.refund({ ...refund, paymentId: "x'; drop table payments; --" }, asService)],
      ["reason", client.refund({ ...refund, reason: "r".repeat(501) }, asService)],
      ["id", client.getPayment({ id: "" }, asService)],
      ["id", client.getPayment({ id: "nope" }, owner.auth)],
      ["settings", client.setFaultSettings({}, asAdmin)],
      ["settings.failure_rate", client.setFaultSettings({ settings: { failureRate: -0.1 } }, asAdmin)],
      ["settings.failure_rate", client.setFaultSettings({ settings: { failureRate: 1.5 } }, asAdmin)],
      ["settings.failure_rate", client.setFaultSettings({ settings: { failureRate: Number.NaN } }, asAdmin)],
      ["settings.added_latency_ms", client.setFaultSettings({ settings: { addedLatencyMs: -1 } }, asAdmin)],
      ["settings.added_latency_ms", client.setFaultSettings({ settings: { addedLatencyMs: 10_001 } }, asAdmin)],
    ];
    // The calls run at once: each gets its handler now, or one failing before its turn would be an unhandled rejection.
    for (const [field, failure] of cases.map(([field, call]) => [field, rpcError(call)] as const)) {
      const err = await failure;
      expect({ field, code: err.code }).toEqual({ field, code: status.INVALID_ARGUMENT });
      expect(err.message.startsWith(`${field}: `)).toBe(true);
    }
    expect(await totals()).toEqual(before);
    expect((await client.getPayment({ id: payment!.id }, asService)).payment?.status).toBe(PaymentStatus.CAPTURED);
    expect(await faults.read()).toEqual(noFaults);
    const [settingsRows] = await db.sql`select count(*)::int as n from fault_settings where failure_rate <> 0 or added_latency_ms <> 0`;
    expect(settingsRows?.n).toBe(0);
  });
});

describe("card data", () => {
  test("no column of any table holds a card number or security code, after captures, declines, a refund, replays and refusals", async () => {
    // Each test card through every path: captured, failed, refunded, replayed, refused.
    const captured = await chargeRequest({}, cards.other);
    const { payment } = await client.charge(captured, asService);
    await client.refund({ idempotencyKey: uniqueName("refund"), paymentId: payment!.id, reason: "test" }, asService);
    await client.charge(captured, asService);
    await rpcError(client.charge({ ...captured, idempotencyKey: uniqueName("charge") }, asService));
    await client.charge(await chargeRequest({}, cards.declined), asService);
    await client.charge(await chargeRequest({}, cards.insufficient), asService);
    await client.charge(await chargeRequest({}, cards.good), asService);
    await tokenize(cards.good);
    const secrets = { numbers: Object.values(cards).map((c) => c.number), cvcs: Object.values(cards).map((c) => c.cvc) };
    const { hits, columns } = await findCardData((text) => db.sql.unsafe(text), secrets);
    expect(columns).toBeGreaterThan(40);
    expect(hits).toEqual([]);
    // The search does find what is there: the last four digits.
    expect((await findCardData((text) => db.sql.unsafe(text), { numbers: [], cvcs: ["4444"] })).hits).toEqual([
      { table: "payment_methods", column: "card_last4", what: "cvc 4444" },
      { table: "payments", column: "card_last4", what: "cvc 4444" },
    ]);
  });
});
