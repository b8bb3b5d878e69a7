import { afterAll, beforeAll, describe, expect, spyOn, test } from "bun:test";
import { create, toBinary } from "@bufbuild/protobuf";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import amqp from "amqplib";
import { count, isNull, sql } from "drizzle-orm";
import { drizzle } from "drizzle-orm/postgres-js";
import { generateDrizzleJson, generateMigration } from "drizzle-kit/api";
import postgres from "postgres";
import { ensureDatabase } from "@bazaar/platform/db";
import { configureLogging } from "@bazaar/platform/log";
import { Broker, on, PoisonMessageError } from "@bazaar/platform/messaging/broker";
import { events } from "@bazaar/platform/messaging/events";
import { handleOnce, Inbox } from "@bazaar/platform/messaging/inbox";
import { retryQueueName } from "@bazaar/platform/messaging/redelivery";
import { enqueueEvent, OutboxRelay } from "@bazaar/platform/messaging/outbox";
import { inbox, outbox } from "@bazaar/platform/messaging/tables";
import { registry } from "@bazaar/platform/metrics";
import { eventually } from "@bazaar/testkit/eventually";
import { repoRoot, testDatabaseUrl, testVhost } from "@bazaar/testkit/fixtures";
import { StockChangedSchema } from "@bazaar/proto/bazaar/events/v1/events_pb";

// The outbox, relay, consumer and inbox against a real Postgres database and a RabbitMQ
// vhost of this run's own.
const database = testDatabaseUrl("messaging");
let vhost: Awaited<ReturnType<typeof testVhost>>;
let client: postgres.Sql;
let db: ReturnType<typeof drizzle>;
const brokers: Broker[] = [];
/** Clients of single tests, closed after the brokers (their consumers get every later test's stock.changed copies). */
const clients: postgres.Sql[] = [];

beforeAll(async () => {
  configureLogging("messaging-test", "error");
  vhost = await testVhost();
  await ensureDatabase(database.url);
  client = postgres(database.url, { max: 5, onnotice: () => {} });
  db = drizzle(client);
  // The tables as every service's migrations create them, from the same drizzle definitions.
  for (const statement of await generateMigration(generateDrizzleJson({}), generateDrizzleJson({ outbox, inbox }))) await db.execute(sql.raw(statement));
  // A table for consumer effects.
  await db.execute(sql`create table effects (consumer text, message_id text, product_id text)`);
}, 60_000);

afterAll(async () => {
  for (const b of brokers) await b.close();
  for (const c of clients) await c.end({ timeout: 5 });
  await client?.end({ timeout: 5 });
  await database.drop();
  await vhost?.drop();
}, 60_000);

async function connect(): Promise<Broker> {
  const broker = await Broker.connect(vhost.url, { service: "messaging-test" });
  brokers.push(broker);
  return broker;
}

function stockChanged(productId: string) {
  return { productId, onHand: 5, reserved: 1, available: 4, occurTime: timestampNow() };
}

async function queueDepth(queue: string): Promise<number> {
  const conn = await amqp.connect(vhost.url);
  try {
    const ch = await conn.createChannel();
    return (await ch.checkQueue(queue)).messageCount;
  } finally {
    await conn.close();
  }
}

async function metric(name: string, labels: Record<string, string>): Promise<number> {
  const values = (await registry.getSingleMetric(name)?.get())?.values ?? [];
  return values.filter((v) => Object.entries(labels).every(([k, val]) => v.labels[k] === val)).reduce((n, v) => n + v.value, 0);
}

describe("outbox and relay", () => {
  test("every committed event is published once confirmed, and marked published", async () => {
    const broker = await connect();
    const received: string[] = [];
    await broker.consume({
      queue: "test.relay",
      handlers: [on(events.stockChanged, async (e) => void received.push(e.productId))],
    });
    const ids = Array.from({ length: 50 }, (_, i) => `product-${i}`);
    await db.transaction(async (tx) => {
      for (const id of ids) await enqueueEvent(tx, events.stockChanged, stockChanged(id));
    });
    const relay = new OutboxRelay(db, broker, { pollMs: 100 }).start();
    try {
      await eventually(() => received.length >= 50, { what: "50 deliveries", timeoutMs: 10_000 });
      expect(received.sort()).toEqual([...ids].sort());
      const [left] = await db.select({ n: count() }).from(outbox).where(isNull(outbox.publishedAt));
      expect(left?.n).toBe(0);
    } finally {
      await relay.stop();
    }
  });

  test("an event rolled back with its transaction is never published", async () => {
    const [before] = await db.select({ n: count() }).from(outbox);
    await db
      .transaction(async (tx) => {
        await enqueueEvent(tx, events.stockChanged, stockChanged("rolled-back"));
        throw new Error("abort the change");
      })
      .catch(() => {});
    const [after] = await db.select({ n: count() }).from(outbox);
    expect(after?.n).toBe(before?.n);
  });

  test("rows left unpublished (a crash between commit and publish) are sent by the next relay's sweep", async () => {
    const broker = await connect();
    const received: string[] = [];
    await broker.consume({ queue: "test.sweep", handlers: [on(events.stockChanged, async (e) => void received.push(e.productId))] });
    // Committed, but no relay runs: as if the process died right after the commit.
    await db.transaction(async (tx) => {
      await enqueueEvent(tx, events.stockChanged, stockChanged("orphan-1"));
      await enqueueEvent(tx, events.stockChanged, stockChanged("orphan-2"));
    });
    await Bun.sleep(300);
    expect(received.filter((r) => r.startsWith("orphan"))).toEqual([]);
    const relay = new OutboxRelay(db, broker, { pollMs: 100 }).start(); // "after restart"
    try {
      await eventually(() => received.filter((r) => r.startsWith("orphan")).length === 2, { what: "the orphans", timeoutMs: 10_000 });
    } finally {
      await relay.stop();
    }
  });

  test("while RabbitMQ is unreachable rows wait; after the connection recovers they drain", async () => {
    const broker = await connect();
    const received: string[] = [];
    await broker.consume({ queue: "test.recovery", handlers: [on(events.stockChanged, async (e) => void received.push(e.productId))] });
    const relay = new OutboxRelay(db, broker, { pollMs: 100 }).start();
    try {
      // Drop every connection of this vhost from the broker's side, as a network cut would.
      const proc = Bun.spawn(["rabbitmqctl", "-q", "close_all_connections", "-p", vhost.name, "test: network cut"], { stdout: "ignore", stderr: "pipe" });
      expect(await proc.exited).toBe(0);
      await eventually(() => !broker.connected, { what: "the broker to notice the cut", timeoutMs: 5_000 });
      await db.transaction(async (tx) => {
        for (let i = 0; i < 20; i++) await enqueueEvent(tx, events.stockChanged, stockChanged(`during-cut-${i}`));
      });
      await eventually(() => received.filter((r) => r.startsWith("during-cut")).length === 20, {
        what: "the outbox to drain after recovery",
        timeoutMs: 20_000,
      });
      expect(broker.connected).toBe(true);
      // A row is marked sent after its confirm, which can come after the consumer had the message.
      await eventually(async () => (await db.select({ n: count() }).from(outbox).where(isNull(outbox.publishedAt)))[0]?.n === 0, {
        what: "every row marked sent",
        timeoutMs: 5_000,
      });
    } finally {
      await relay.stop();
    }
  }, 40_000);
  test("the backlog of an outage is published as soon as RabbitMQ takes the service back, not at the next sweep", async () => {
    const broker = await connect();
    const received: string[] = [];
    await broker.consume({ queue: "test.backlog", handlers: [on(events.stockChanged, async (e) => void received.push(e.productId))] });
    // No sweep during the test: only the reconnection can make the relay publish.
    const relay = new OutboxRelay(db, broker, { pollMs: 600_000 }).start();
    const rabbitmqctl = async (...args: string[]) => {
      const proc = Bun.spawn(["rabbitmqctl", "-q", ...args], { stdout: "ignore", stderr: "pipe" });
      expect(await proc.exited).toBe(0);
    };
    const grant = () => rabbitmqctl("set_permissions", "-p", vhost.name, "guest", ".*", ".*", ".*");
    try {
      // An outage that lasts: the broker refuses the service's user until it is let back in.
      await rabbitmqctl("clear_permissions", "-p", vhost.name, "guest");
      await rabbitmqctl("close_all_connections", "-p", vhost.name, "test: outage");
      await eventually(() => !broker.connected, { what: "the broker to notice the outage", timeoutMs: 5_000 });
      await db.transaction(async (tx) => {
        for (let i = 0; i < 300; i++) await enqueueEvent(tx, events.stockChanged, stockChanged(`backlog-${i}`));
      });
      await Bun.sleep(2_500); // the reconnection back-off reaches its cap meanwhile
      await grant();
      const back = performance.now();
      await eventually(() => received.filter((r) => r.startsWith("backlog")).length === 300, { what: "the backlog to be published", timeoutMs: 10_000 });
      const drainedMs = performance.now() - back;
      console.log(`300 events waiting through an outage published ${drainedMs.toFixed(0)} ms after RabbitMQ took the service back`);
      expect(drainedMs).toBeLessThan(5_000);
    } finally {
      await grant().catch(() => {});
      await relay.stop();
    }
  }, 40_000);
});

describe("consumers", () => {
  // Every queue bound to stock.changed.v1 gets its own copy: count one consumer's effects.
  const effectCount = async (consumer: string, messageId: string) =>
    Number((await db.execute<{ n: string }>(sql`select count(*) as n from effects where consumer = ${consumer} and message_id = ${messageId}`))[0]?.n ?? 0);

  test("a message delivered twice has its effect once (inbox)", async () => {
    const broker = await connect();
    const seen: string[] = [];
    await broker.consume({
      queue: "test.inbox",
      handlers: [
        on(events.stockChanged, (e, d) =>
          handleOnce(db, "test.inbox", d.messageId, async (tx) => {
            seen.push(d.messageId);
            await tx.execute(sql`insert into effects values ('test.inbox', ${d.messageId}, ${e.productId})`);
          }),
        ),
      ],
    });
    const messageId = crypto.randomUUID();
    const payload = toBinary(StockChangedSchema, create(StockChangedSchema, stockChanged("twice")));
    const duplicatesBefore = await metric("bazaar_messages_consumed_total", { queue: "test.inbox", outcome: "duplicate" });
    await broker.publish([{ id: messageId, routingKey: events.stockChanged.routingKey, payload, headers: {} }]);
    await broker.publish([{ id: messageId, routingKey: events.stockChanged.routingKey, payload, headers: {} }]);
    await eventually(async () => (await metric("bazaar_messages_consumed_total", { queue: "test.inbox", outcome: "duplicate" })) > duplicatesBefore, {
      what: "the duplicate",
      timeoutMs: 10_000,
    });
    expect(await effectCount("test.inbox", messageId)).toBe(1);
    expect(seen.filter((s) => s === messageId)).toHaveLength(1);
  });

  test("messages in flight together share one inbox transaction; a duplicate among them does nothing and a failing one is retried alone", async () => {
    const broker = await connect();
    // A client of its own that counts the transactions it commits.
    let commits = 0;
    const counted = postgres(database.url, { max: 5, onnotice: () => {}, debug: (_c, query) => void (/^\s*commit/i.test(query) && commits++) });
    clients.push(counted);
    const inbox = new Inbox(drizzle(counted), "test.batch");
    let failures = 0;
    await broker.consume({
      queue: "test.batch",
      prefetch: 50,
      retry: { attempts: 3, initialDelayMs: 100, maxDelayMs: 100 },
      handlers: [
        inbox.on(events.stockChanged, async (tx, e, d) => {
          await tx.execute(sql`insert into effects values ('test.batch', ${d.messageId}, ${e.productId})`);
          // In its batch, then alone; the delayed retry succeeds.
          if (e.productId === "flaky" && failures++ < 2) throw new Error("fails twice");
        }),
      ],
    });
    const message = (productId: string, id: string = crypto.randomUUID()) => ({
      id,
      routingKey: events.stockChanged.routingKey,
      payload: toBinary(StockChangedSchema, create(StockChangedSchema, stockChanged(productId))),
      headers: {},
    });
    const good = Array.from({ length: 40 }, (_, i) => message(`batch-${i}`));
    // Published together, so the broker hands them out together: one transaction takes them.
    await broker.publish(good);
    await eventually(async () => (await metric("bazaar_messages_consumed_total", { queue: "test.batch", outcome: "processed" })) === 40, {
      what: "the 40 messages",
    });
    expect(commits).toBeLessThanOrEqual(5);
    for (const m of good.slice(0, 3)) expect(await effectCount("test.batch", m.id)).toBe(1);
    // A batch with a message handled before and one whose effect fails in the batch and alone.
    const flaky = message("flaky");
    const more = [message("batch-late"), message("batch-again", good[0]!.id), flaky];
    await broker.publish(more);
    await eventually(async () => (await metric("bazaar_messages_consumed_total", { queue: "test.batch", outcome: "processed" })) === 42, {
      what: "the late and the flaky message",
    });
    expect(await metric("bazaar_messages_consumed_total", { queue: "test.batch", outcome: "duplicate" })).toBe(1);
    expect(failures).toBe(3);
    for (const m of [good[0]!, more[0]!, flaky]) expect(await effectCount("test.batch", m.id)).toBe(1);
  });

  test("a consumer that dies after its effect but before the ack gets the message again and does nothing twice", async () => {
    const broker = await connect();
    let crashes = 0;
    await broker.consume({
      queue: "test.crash",
      handlers: [
        on(events.stockChanged, async (e, d) => {
          const result = await handleOnce(db, "test.crash", d.messageId, async (tx) => {
            await tx.execute(sql`insert into effects values ('test.crash', ${d.messageId}, ${e.productId})`);
          });
          if (crashes === 0) {
            crashes++;
            // The effect committed; the ack never leaves: the channel dies with the message unacked.
            throw new Error("simulated crash before ack");
          }
          return result;
        }),
      ],
    });
    const messageId = crypto.randomUUID();
    await broker.publish([
      {
        id: messageId,
        routingKey: events.stockChanged.routingKey,
        payload: toBinary(StockChangedSchema, create(StockChangedSchema, stockChanged("crash"))),
        headers: {},
      },
    ]);
    await eventually(async () => (await metric("bazaar_messages_consumed_total", { queue: "test.crash", outcome: "duplicate" })) === 1, {
      what: "the redelivery",
    });
    expect(crashes).toBe(1);
    expect(await effectCount("test.crash", messageId)).toBe(1);
  });

  test("a malformed message goes to the dead-letter queue and the next good one is processed", async () => {
    const broker = await connect();
    const received: string[] = [];
    await broker.consume({ queue: "test.poison", handlers: [on(events.stockChanged, async (e) => void received.push(e.productId))] });
    await broker.publish([
      { id: crypto.randomUUID(), routingKey: events.stockChanged.routingKey, payload: new Uint8Array([0xff, 0xff, 0xff, 0x0f]), headers: {} },
    ]);
    await broker.publish([
      {
        id: crypto.randomUUID(),
        routingKey: events.stockChanged.routingKey,
        payload: toBinary(StockChangedSchema, create(StockChangedSchema, stockChanged("after-poison"))),
        headers: {},
      },
    ]);
    await eventually(() => received.includes("after-poison"), { what: "the good message", timeoutMs: 10_000 });
    await eventually(async () => (await queueDepth("test.poison.dlq")) === 1, { what: "the poison message in the DLQ", timeoutMs: 10_000 });
  });

  test("the consumer's span joins the trace of the change that enqueued the event", async () => {
    const { context, trace } = await import("@opentelemetry/api");
    const { startTelemetry } = await import("@bazaar/platform/telemetry");
    startTelemetry({ serviceName: "messaging-test" });
    const broker = await connect();
    const consumerTraces: string[] = [];
    await broker.consume({
      queue: "test.trace",
      handlers: [on(events.stockChanged, async () => void consumerTraces.push(trace.getActiveSpan()?.spanContext().traceId ?? ""))],
    });
    const { tracer } = await import("@bazaar/platform/telemetry");
    const span = tracer().startSpan("the change");
    const traceId = span.spanContext().traceId;
    await context.with(trace.setSpan(context.active(), span), () =>
      db.transaction(async (tx) => {
        await enqueueEvent(tx, events.stockChanged, stockChanged("traced"));
      }),
    );
    span.end();
    const relay = new OutboxRelay(db, broker, { pollMs: 100 }).start();
    try {
      await eventually(() => consumerTraces.length > 0, { what: "the traced delivery", timeoutMs: 10_000 });
      expect(consumerTraces[0]).toBe(traceId);
    } finally {
      await relay.stop();
    }
  });
});

describe("delayed redelivery and the dead-letter queue", () => {
  const stockMessage = (productId: string, id: string = crypto.randomUUID()) => ({
    id,
    routingKey: events.stockChanged.routingKey,
    payload: toBinary(StockChangedSchema, create(StockChangedSchema, stockChanged(productId))),
    headers: {},
  });
  const effectCount = async (consumer: string, messageId: string) =>
    Number((await db.execute<{ n: string }>(sql`select count(*) as n from effects where consumer = ${consumer} and message_id = ${messageId}`))[0]?.n ?? 0);
  /** The JSON log lines written to stderr while `run` runs, and its result. */
  async function withLogLines<T>(run: (lines: () => Record<string, unknown>[]) => Promise<T>): Promise<T> {
    const chunks: string[] = [];
    const original = process.stderr.write.bind(process.stderr);
    const spy = spyOn(process.stderr, "write").mockImplementation((chunk: string | Uint8Array, ...rest: unknown[]) => {
      chunks.push(typeof chunk === "string" ? chunk : new TextDecoder().decode(chunk));
      return original(chunk, ...(rest as []));
    });
    try {
      return await run(() =>
        chunks
          .join("")
          .split("\n")
          .filter((l) => l.startsWith("{"))
          .map((l) => JSON.parse(l) as Record<string, unknown>),
      );
    } finally {
      spy.mockRestore();
    }
  }

  test("a handler that fails twice and then succeeds has its effect once, after growing delays, and nothing is dead-lettered", async () => {
    const broker = await connect();
    const queue = "test.retry-recovers";
    const deliveries: { at: number; attempt: number }[] = [];
    await broker.consume({
      queue,
      retry: { attempts: 5, initialDelayMs: 100, maxDelayMs: 1_000 },
      handlers: [
        on(events.stockChanged, async (e, d) => {
          deliveries.push({ at: performance.now(), attempt: d.attempt });
          if (deliveries.length <= 2) throw new Error("the cart store is not answering");
          return handleOnce(db, queue, d.messageId, async (tx) => {
            await tx.execute(sql`insert into effects values (${queue}, ${d.messageId}, ${e.productId})`);
          });
        }),
      ],
    });
    const redeliveredBefore = await metric("bazaar_messages_redelivered_total", { queue });
    const message = stockMessage("flaky");
    await broker.publish([message]);
    await eventually(async () => (await effectCount(queue, message.id)) === 1, { what: "the effect after two failures", timeoutMs: 10_000 });
    expect(deliveries.map((d) => d.attempt)).toEqual([1, 2, 3]);
    const [first, second, third] = deliveries.map((d) => d.at) as [number, number, number];
    // 100 ms and then 200 ms, each within 20% jitter: the second wait is always the longer.
    expect(second - first).toBeGreaterThanOrEqual(80);
    expect(third - second).toBeGreaterThanOrEqual(160);
    expect(third - second).toBeGreaterThan(second - first);
    expect(await metric("bazaar_messages_redelivered_total", { queue })).toBe(redeliveredBefore + 2);
    expect(await queueDepth(`${queue}.dlq`)).toBe(0);
    expect(await queueDepth(retryQueueName(queue, 1))).toBe(0);
  });

  test("a handler that always fails is dead-lettered after exactly its attempts, logged and counted, while other messages flow", async () => {
    const broker = await connect();
    const queue = "test.retry-exhausted";
    let calls = 0;
    const received: string[] = [];
    await broker.consume({
      queue,
      retry: { attempts: 4, initialDelayMs: 20, maxDelayMs: 40 },
      handlers: [
        on(events.stockChanged, async (e) => {
          if (e.productId !== "always-fails") return void received.push(e.productId);
          calls++;
          throw new Error("a dependency is down");
        }),
      ],
    });
    const deadBefore = await metric("bazaar_messages_dead_lettered_total", { queue, reason: "retries_exhausted" });
    const bad = stockMessage("always-fails");
    await withLogLines(async (lines) => {
      await broker.publish([bad, stockMessage("fine")]);
      await eventually(() => received.includes("fine"), { what: "the good message", timeoutMs: 10_000 });
      await eventually(async () => (await queueDepth(`${queue}.dlq`)) === 1, { what: "the failing message in the DLQ", timeoutMs: 10_000 });
      const logged = await eventually(() => lines().find((l) => l.msg === "dead-lettered a message" && l.messageId === bad.id), {
        what: "the dead-lettering to be logged",
        timeoutMs: 5_000,
      });
      expect(logged).toMatchObject({ level: "error", queue, routingKey: events.stockChanged.routingKey, attempts: 4, reason: "retries_exhausted" });
      expect(String(logged.why)).toContain("a dependency is down");
    });
    expect(calls).toBe(4);
    expect(await metric("bazaar_messages_dead_lettered_total", { queue, reason: "retries_exhausted" })).toBe(deadBefore + 1);
  });

  test("a message its handler calls poison is dead-lettered at once, not retried", async () => {
    const broker = await connect();
    const queue = "test.retry-poison";
    let calls = 0;
    await broker.consume({
      queue,
      retry: { attempts: 5, initialDelayMs: 20, maxDelayMs: 40 },
      handlers: [
        on(events.stockChanged, async () => {
          calls++;
          throw new PoisonMessageError("this product id can never be handled");
        }),
      ],
    });
    const redeliveredBefore = await metric("bazaar_messages_redelivered_total", { queue });
    await broker.publish([stockMessage("poison-by-handler")]);
    await eventually(async () => (await queueDepth(`${queue}.dlq`)) === 1, { what: "the poison message in the DLQ", timeoutMs: 10_000 });
    expect(calls).toBe(1);
    expect(await metric("bazaar_messages_dead_lettered_total", { queue, reason: "poison" })).toBe(1);
    expect(await metric("bazaar_messages_redelivered_total", { queue })).toBe(redeliveredBefore);
    // What an operator's alert and dashboard read: the DLQ's depth from the broker, the consumer
    // on the work queue, and how long the handler took before the message was dead-lettered.
    expect(await metric("bazaar_dlq_messages", { queue })).toBe(1);
    expect(await metric("bazaar_queue_consumers", { queue })).toBe(1);
    expect(await metric("bazaar_queue_messages", { queue })).toBe(0);
    const handled = (await registry.getSingleMetric("bazaar_message_handling_seconds")?.get())?.values ?? [];
    const count = handled.find(
      (v) =>
        (v as { metricName?: string }).metricName === "bazaar_message_handling_seconds_count" &&
        v.labels.queue === queue &&
        v.labels.outcome === "dead_lettered",
    );
    expect(count?.value).toBe(1);
  });

  test("a message waiting for its retry while the consumer restarts is delivered to the new consumer", async () => {
    const queue = "test.retry-restart";
    const spec = (handle: Parameters<typeof on<typeof StockChangedSchema>>[1]) => ({
      queue,
      retry: { attempts: 3, initialDelayMs: 1_000, maxDelayMs: 1_000 },
      handlers: [on(events.stockChanged, handle)],
    });
    const before = await Broker.connect(vhost.url, { service: "messaging-test" });
    await before.consume(spec(async () => Promise.reject(new Error("failing until the restart"))));
    const message = stockMessage("across-restart");
    await before.publish([message]);
    await eventually(async () => (await queueDepth(retryQueueName(queue, 1))) === 1, { what: "the message to wait in the retry queue", timeoutMs: 10_000 });
    await before.close();
    const after = await connect();
    const attempts: number[] = [];
    await after.consume(
      spec((e, d) => {
        attempts.push(d.attempt);
        return handleOnce(db, queue, d.messageId, async (tx) => {
          await tx.execute(sql`insert into effects values (${queue}, ${d.messageId}, ${e.productId})`);
        });
      }),
    );
    await eventually(async () => (await effectCount(queue, message.id)) === 1, { what: "the retried message after the restart", timeoutMs: 10_000 });
    expect(attempts).toEqual([2]);
  });

  test("a queue declared before retries existed is taken over as it is, and its messages are retried", async () => {
    const queue = "test.retry-existing";
    // The work queue and DLQ as the consumers of the previous release declared them.
    const conn = await amqp.connect(vhost.url);
    try {
      const ch = await conn.createConfirmChannel();
      await ch.assertExchange("bazaar.events", "topic", { durable: true });
      await ch.assertExchange("bazaar.events.dlx", "direct", { durable: true });
      await ch.assertQueue(`${queue}.dlq`, { durable: true, arguments: { "x-queue-type": "quorum" } });
      await ch.bindQueue(`${queue}.dlq`, "bazaar.events.dlx", queue);
      await ch.assertQueue(queue, {
        durable: true,
        arguments: {
          "x-queue-type": "quorum",
          "x-delivery-limit": 5,
          "x-dead-letter-exchange": "bazaar.events.dlx",
          "x-dead-letter-routing-key": queue,
          "x-dead-letter-strategy": "at-least-once",
          "x-overflow": "reject-publish",
        },
      });
      await ch.bindQueue(queue, "bazaar.events", events.stockChanged.routingKey);
    } finally {
      await conn.close();
    }
    const broker = await connect();
    const attempts: number[] = [];
    await broker.consume({
      queue,
      retry: { attempts: 3, initialDelayMs: 20, maxDelayMs: 20 },
      handlers: [
        on(events.stockChanged, async (_, d) => {
          attempts.push(d.attempt);
          if (d.attempt === 1) throw new Error("fails once");
        }),
      ],
    });
    await broker.publish([stockMessage("existing-queue")]);
    await eventually(() => attempts.length === 2, { what: "the retry", timeoutMs: 10_000 });
    expect(attempts).toEqual([1, 2]);
  });

  test("a failed delivery whose retry queue was deleted is handed back to its queue, not lost", async () => {
    const broker = await connect();
    const queue = "test.retry-queue-gone";
    let calls = 0;
    const handled: string[] = [];
    await broker.consume({
      queue,
      retry: { attempts: 3, initialDelayMs: 20, maxDelayMs: 20 },
      handlers: [
        on(events.stockChanged, async (e) => {
          if (++calls === 1) throw new Error("fails once");
          handled.push(e.productId);
        }),
      ],
    });
    const conn = await amqp.connect(vhost.url);
    try {
      await (await conn.createChannel()).deleteQueue(retryQueueName(queue, 1));
    } finally {
      await conn.close();
    }
    await broker.publish([stockMessage("retry-queue-gone")]);
    await eventually(() => handled.includes("retry-queue-gone"), { what: "the message after its failure", timeoutMs: 10_000 });
    expect(calls).toBe(2);
  });

  test("the replay command moves dead-lettered messages back, and with the cause fixed each is processed once", async () => {
    const broker = await connect();
    const queue = "test.replay";
    let fixed = false;
    const attempts: number[] = [];
    await broker.consume({
      queue,
      retry: { attempts: 2, initialDelayMs: 20, maxDelayMs: 20 },
      handlers: [
        on(events.stockChanged, (e, d) => {
          if (!fixed) return Promise.reject(new Error("a bug, fixed later"));
          attempts.push(d.attempt);
          return handleOnce(db, queue, d.messageId, async (tx) => {
            await tx.execute(sql`insert into effects values (${queue}, ${d.messageId}, ${e.productId})`);
          });
        }),
      ],
    });
    const messages = ["replay-1", "replay-2", "replay-3"].map((p) => stockMessage(p));
    await broker.publish(messages);
    await eventually(async () => (await queueDepth(`${queue}.dlq`)) === 3, { what: "the three messages in the DLQ", timeoutMs: 10_000 });
    const replay = async (...args: string[]) => {
      const proc = Bun.spawn(["bun", "scripts/dlq-replay.ts", queue, ...args], {
        cwd: repoRoot,
        env: { ...process.env, AMQP_URL: vhost.url },
        stdout: "pipe",
        stderr: "pipe",
      });
      const [code, out, err] = await Promise.all([proc.exited, new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
      expect({ code, err }).toEqual({ code: 0, err: "" });
      return out;
    };
    const dry = await replay("--dry-run");
    for (const m of messages) expect(dry).toContain(`would move ${m.id} ${events.stockChanged.routingKey} (2 attempts, rejected)`);
    expect(await queueDepth(`${queue}.dlq`)).toBe(3);
    fixed = true;
    const one = await replay("--limit", "1");
    expect(one).toContain(`moved 1 message(s) from ${queue}.dlq to ${queue}`);
    await eventually(async () => (await queueDepth(`${queue}.dlq`)) === 2, { what: "one message left the DLQ" });
    expect(await replay()).toContain(`moved 2 message(s) from ${queue}.dlq to ${queue}`);
    await eventually(async () => (await Promise.all(messages.map((m) => effectCount(queue, m.id)))).every((n) => n === 1), {
      what: "each replayed message's effect",
      timeoutMs: 10_000,
    });
    expect(attempts).toEqual([1, 1, 1]);
    expect(await queueDepth(`${queue}.dlq`)).toBe(0);
  }, 20_000);
});

describe("fan-out consumers", () => {
  const publishStock = (broker: Broker, productIds: string[]) =>
    broker.publish(
      productIds.map((productId) => ({
        id: crypto.randomUUID(),
        routingKey: events.stockChanged.routingKey,
        payload: toBinary(StockChangedSchema, create(StockChangedSchema, stockChanged(productId))),
        headers: {},
      })),
    );

  async function queueExists(queue: string): Promise<boolean> {
    const conn = await amqp.connect(vhost.url);
    try {
      const ch = await conn.createChannel();
      // The check fails (closing the channel) with 404 NOT_FOUND for a missing queue, and with
      // 405 RESOURCE_LOCKED for one that exists but is exclusive to another connection.
      ch.on("error", () => {});
      return await ch.checkQueue(queue).then(
        () => true,
        (err: Error) => {
          if (/NOT_FOUND/.test(err.message)) return false;
          if (/RESOURCE_LOCKED/.test(err.message)) return true;
          throw err;
        },
      );
    } finally {
      await conn.close().catch(() => {});
    }
  }

  test("every process's fan-out consumer receives every event, each on a queue of its own", async () => {
    const [a, b] = [await connect(), await connect()];
    const got = { a: [] as string[], b: [] as string[] };
    const queueA = await a.fanOut({ name: "test.fan-out", handlers: [on(events.stockChanged, async (e) => void got.a.push(e.productId))] });
    const queueB = await b.fanOut({ name: "test.fan-out", handlers: [on(events.stockChanged, async (e) => void got.b.push(e.productId))] });
    expect(queueA).not.toBe(queueB);
    expect(queueA.startsWith("test.fan-out.")).toBe(true);
    const ids = Array.from({ length: 20 }, (_, i) => `fan-${i}`);
    const { acked } = await publishStock(a, ids);
    expect(acked).toHaveLength(20);
    await eventually(() => got.a.length >= 20 && got.b.length >= 20, { what: "both consumers to get all 20", timeoutMs: 10_000 });
    expect(got.a.sort()).toEqual([...ids].sort());
    expect(got.b.sort()).toEqual([...ids].sort());
  });

  test("its queue disappears when the connection closes", async () => {
    const broker = await Broker.connect(vhost.url, { service: "messaging-test" });
    const queue = await broker.fanOut({ name: "test.fan-out-gone", handlers: [on(events.stockChanged, async () => {})] });
    expect(await queueExists(queue)).toBe(true);
    await broker.close();
    await eventually(async () => !(await queueExists(queue)), { what: "the queue to be deleted", timeoutMs: 5_000 });
  });

  test("a message its handler cannot take is dropped, not redelivered, and the next one is handled", async () => {
    const broker = await connect();
    const got: string[] = [];
    let failures = 0;
    await broker.fanOut({
      name: "test.fan-out-drop",
      handlers: [
        on(events.stockChanged, async (e) => {
          if (e.productId === "unreadable") {
            failures++;
            throw new Error("cannot use this one");
          }
          got.push(e.productId);
        }),
      ],
    });
    const droppedBefore = await metric("bazaar_messages_consumed_total", { queue: "test.fan-out-drop", outcome: "dropped" });
    await publishStock(broker, ["unreadable", "after-unreadable"]);
    await eventually(() => got.includes("after-unreadable"), { what: "the good message", timeoutMs: 10_000 });
    await eventually(async () => (await metric("bazaar_messages_consumed_total", { queue: "test.fan-out-drop", outcome: "dropped" })) === droppedBefore + 1, {
      what: "the drop to be counted",
      timeoutMs: 5_000,
    });
    expect(failures).toBe(1);
  });

  test("after the connection drops, the consumer is declared again and receives new events", async () => {
    const broker = await connect();
    const got: string[] = [];
    const queue = await broker.fanOut({ name: "test.fan-out-recovery", handlers: [on(events.stockChanged, async (e) => void got.push(e.productId))] });
    // Set up again means the consumers are bound and consuming, not just the publisher open.
    let setUpAgain = false;
    broker.onConnected(() => {
      setUpAgain = true;
    });
    const proc = Bun.spawn(["rabbitmqctl", "-q", "close_all_connections", "-p", vhost.name, "test: network cut"], { stdout: "ignore", stderr: "pipe" });
    expect(await proc.exited).toBe(0);
    await eventually(() => !broker.connected, { what: "the broker to notice the cut", timeoutMs: 5_000 });
    await eventually(() => setUpAgain && broker.connected, { what: "the broker to reconnect and set its consumers up again", timeoutMs: 20_000 });
    // Declared again under the same name on the new connection.
    await eventually(() => queueExists(queue), { what: "the queue to be declared again", timeoutMs: 10_000 });
    await publishStock(broker, ["after-cut"]);
    await eventually(() => got.includes("after-cut"), { what: "the event published after the cut", timeoutMs: 10_000 });
  }, 40_000);

  test("a fan-out consumer's name must be usable in a queue name", async () => {
    const broker = await connect();
    await expect(broker.fanOut({ name: "no spaces allowed", handlers: [] })).rejects.toThrow("must be 1-100 letters");
  });
});
