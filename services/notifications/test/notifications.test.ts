/**
 * The notifications service in process, against real Postgres and RabbitMQ: its consumer on
 * a vhost of this run's own, fed by another Broker the way the other services' outbox relays
 * feed it, and its RPC handlers behind a real gRPC server with tokens from a test issuer.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { create, type DescMessage, type MessageInitShape, toBinary } from "@bufbuild/protobuf";
import { status } from "@grpc/grpc-js";
import amqp, { type Channel, type ChannelModel } from "amqplib";
import { count, eq, inArray } from "drizzle-orm";
import type { GrpcClient } from "@bazaar/platform/grpc/client";
import { configureLogging } from "@bazaar/platform/log";
import { Broker, type EventHandler } from "@bazaar/platform/messaging/broker";
import { type EventType, events } from "@bazaar/platform/messaging/events";
import { eventually } from "@bazaar/testkit/eventually";
import { type BearerAuth, rpcError, startTestGrpcServer, type TestGrpcServerWithIssuer } from "@bazaar/testkit/fixtures";
import { type ScopedVhost, TestScope } from "@bazaar/testkit/test-scope";
import { type MarkReadRequestSchema, NotificationsService } from "@bazaar/proto/bazaar/notifications/v1/notifications_pb";
import { consumeEvents, eventsQueue, notificationHandlers } from "../src/consumer.ts";
import * as schema from "../src/db/schema.ts";
import { NotificationStore, type NotificationsDatabase } from "../src/notifications.ts";
import { notificationsAccess, notificationsHandlers } from "../src/rpc.ts";

const { notifications } = schema;
const scope = new TestScope();
let vhost: ScopedVhost;
let db: NotificationsDatabase;
let publisher: Broker;
let inspector: ChannelModel;
let inspect: Channel;
let grpc: TestGrpcServerWithIssuer<typeof NotificationsService>;
let client: GrpcClient<typeof NotificationsService>;

beforeAll(async () => {
  configureLogging("notifications", "error");
  vhost = await scope.vhost();
  db = await scope.database("notifications", schema);
  publisher = scope.add(await Broker.connect(vhost.url, { service: "test-publisher" }), (b) => b.close());
  inspector = scope.add(await amqp.connect(vhost.url), (i) => i.close().catch(() => {}));
  inspect = await inspector.createChannel();
  grpc = scope.add(
    await startTestGrpcServer({ service: NotificationsService, impl: notificationsHandlers(new NotificationStore(db)), access: notificationsAccess }),
    (g) => g.stop(),
  );
  client = grpc.client;
}, 60_000);

afterAll(() => scope.cleanup(), 60_000);

// ---- helpers ----

/** What the consumer's handlers did with each message id, in order: "created", "duplicate" or an error's name. */
const outcomes = new Map<string, string[]>();

/** Records what each handler did, so a test can wait for a message to have been handled. */
function recorded(handlers: EventHandler[]): EventHandler[] {
  return handlers.map((h) => ({
    ...h,
    handle: async (message, delivery) => {
      const list = outcomes.get(delivery.messageId) ?? [];
      outcomes.set(delivery.messageId, list);
      try {
        const result = await h.handle(message, delivery);
        list.push(result ?? "created");
        return result;
      } catch (err) {
        list.push((err as Error).name);
        throw err;
      }
    },
  }));
}

/** Starts a consumer of the service's queue on its own connection, the way main.ts does. */
async function startConsumer(handlers = recorded(notificationHandlers(db))): Promise<Broker> {
  const broker = await Broker.connect(vhost.url, { service: "notifications" });
  await consumeEvents(broker, db, handlers);
  return broker;
}

/** Waits until the message was handled `times` times; returns the outcomes. */
const handled = (messageId: string, times = 1) =>
  eventually(
    () => {
      const list = outcomes.get(messageId);
      return list && list.length >= times ? list : undefined;
    },
    { what: `message ${messageId} handled ${times}x` },
  );

/** Publishes one event as an outbox relay would; returns its message id. */
async function publish<S extends DescMessage>(event: EventType<S>, init: MessageInitShape<S>, id: string = crypto.randomUUID()): Promise<string> {
  return publishRaw(event.routingKey, toBinary(event.schema, create(event.schema, init)), id);
}

async function publishRaw(routingKey: string, payload: Uint8Array, id: string = crypto.randomUUID()): Promise<string> {
  const result = await publisher.publish([{ id, routingKey, payload, headers: {} }]);
  expect(result.acked).toEqual([id]);
  return id;
}

const rowsOf = (messageId: string) => db.db.select().from(notifications).where(eq(notifications.sourceMessageId, messageId));
const countAll = async () => (await db.db.select({ n: count() }).from(notifications))[0]?.n ?? 0;
const queueDepth = async (queue: string) => (await inspect.checkQueue(queue)).messageCount;
const usd = (amountMinor: bigint) => ({ currencyCode: "USD", amountMinor });

const auths = new Map<string, BearerAuth>();
/** Call options carrying a customer token of this user. */
async function as(userId: string): Promise<BearerAuth> {
  let auth = auths.get(userId);
  if (!auth) {
    auth = await grpc.auth({ sub: userId, roles: ["customer"] });
    auths.set(userId, auth);
  }
  return auth;
}

/** Inserts notifications for a user straight into the table; `ms` are created_at offsets (ties allowed). */
async function seed(userId: string, ms: number[], read = false) {
  const base = Date.UTC(2030, 0, 1);
  return db.db
    .insert(notifications)
    .values(
      ms.map((offset, i) => ({
        userId,
        kind: "order.confirmed",
        title: `Seeded ${i}`,
        body: "A seeded notification.",
        sourceMessageId: crypto.randomUUID(),
        createdAt: new Date(base + offset),
        readAt: read ? new Date() : null,
      })),
    )
    .returning();
}

/** Every notification of a user through the RPC, page by page; checks the unread count on every page. */
async function listAll(userId: string, pageSize: number, unreadOnly = false) {
  const ids: string[] = [];
  const counts = new Set<number>();
  let pageToken = "";
  let pages = 0;
  do {
    const page = await client.listNotifications({ pageSize, pageToken, unreadOnly }, await as(userId));
    expect(page.notifications.length).toBeLessThanOrEqual(pageSize);
    ids.push(...page.notifications.map((n) => n.id));
    counts.add(page.unreadCount);
    pageToken = page.nextPageToken;
    pages++;
  } while (pageToken && pages < 50);
  return { ids, pages, counts: [...counts] };
}

/** Ids in the order the listing must give them: (created_at, id) descending. */
const newestFirst = (rows: { id: string; createdAt: Date }[]) =>
  [...rows].sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime() || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0)).map((r) => r.id);

// ---- the consumer ----

describe("the events consumer", () => {
  let consumer: Broker;
  beforeAll(async () => {
    consumer = await startConsumer();
  }, 60_000);
  afterAll(async () => {
    await consumer?.close();
  }, 60_000);

  test("a new user is welcomed by name, as an unread notification only they see", async () => {
    const userId = crypto.randomUUID();
    const id = await publish(events.userRegistered, { userId, email: "ada@example.com", displayName: "Ada" });
    expect(await handled(id)).toEqual(["created"]);
    const page = await client.listNotifications({}, await as(userId));
    expect(page.notifications).toHaveLength(1);
    expect(page.notifications[0]).toMatchObject({ kind: "user.registered", title: "Welcome to Bazaar, Ada!", read: false, orderId: "" });
    expect(page.unreadCount).toBe(1);
    expect((await client.listNotifications({}, await as(crypto.randomUUID()))).notifications).toEqual([]);
  });

  test("each order and payment event tells its buyer, with the amount and the short order id", async () => {
    const buyer = crypto.randomUUID();
    const bystander = crypto.randomUUID();
    const orderId = crypto.randomUUID();
    const order = orderId.slice(0, 8);
    const paymentId = crypto.randomUUID();
    const ids = [
      await publish(events.orderPlaced, {
        orderId,
        userId: buyer,
        total: usd(4250n),
        lines: [{ productId: crypto.randomUUID(), name: "Walnut Board", quantity: 2 }],
      }),
      await publish(events.paymentCaptured, { paymentId, orderId, userId: buyer, amount: usd(4250n) }),
      await publish(events.orderConfirmed, { orderId, userId: buyer, total: usd(4250n), paymentId }),
      await publish(events.paymentRefunded, { paymentId, orderId, userId: buyer, amount: usd(1205n) }),
      await publish(events.paymentFailed, { paymentId, orderId, userId: buyer, amount: usd(999n), reason: "The card was declined" }),
      await publish(events.orderCancelled, { orderId, userId: buyer, reason: "Payment failed: the card was declined." }),
      await publish(events.userRegistered, { userId: bystander, displayName: "Bob" }),
    ];
    for (const id of ids) expect(await handled(id)).toEqual(["created"]);

    const { notifications: mine, unreadCount } = await client.listNotifications({}, await as(buyer));
    expect(unreadCount).toBe(6);
    const byKind = new Map(mine.map((n) => [n.kind, n]));
    expect([...byKind.keys()].sort()).toEqual(["order.cancelled", "order.confirmed", "order.placed", "payment.captured", "payment.failed", "payment.refunded"]);
    for (const n of mine) expect(n.orderId).toBe(orderId);
    expect(byKind.get("order.placed")).toMatchObject({
      title: `Order ${order} placed`,
      body: `We received your order ${order} (2 × Walnut Board) for $42.50. We will let you know as soon as it is confirmed.`,
    });
    expect(byKind.get("order.confirmed")).toMatchObject({
      title: `Order ${order} confirmed`,
      body: `Your order ${order} for $42.50 is confirmed and paid. We are getting it ready.`,
    });
    expect(byKind.get("order.cancelled")).toMatchObject({
      title: `Order ${order} cancelled`,
      body: `Your order ${order} was cancelled. Reason: Payment failed: the card was declined.`,
    });
    expect(byKind.get("payment.captured")).toMatchObject({
      title: "Payment of $42.50 received",
      body: `We received your payment of $42.50 for order ${order}. Thank you!`,
    });
    expect(byKind.get("payment.failed")).toMatchObject({
      title: `Payment for order ${order} failed`,
      body: `We could not charge $9.99 for order ${order}. Reason: The card was declined.`,
    });
    expect(byKind.get("payment.refunded")).toMatchObject({ title: "Refund of $12.05 on its way" });
    expect(byKind.get("payment.refunded")?.body).toContain(`We refunded $12.05 for order ${order}.`);

    const theirs = await client.listNotifications({}, await as(bystander));
    expect(theirs.notifications.map((n) => n.title)).toEqual(["Welcome to Bazaar, Bob!"]);
  });

  test("the same message delivered twice makes one notification", async () => {
    const userId = crypto.randomUUID();
    const event = { orderId: crypto.randomUUID(), userId, total: usd(100n), paymentId: crypto.randomUUID() };
    const id = await publish(events.orderConfirmed, event);
    await publish(events.orderConfirmed, event, id);
    // Both may be in flight at once (prefetch): either one may be the one that creates it.
    expect([...(await handled(id, 2))].sort()).toEqual(["created", "duplicate"]);
    expect(await rowsOf(id)).toHaveLength(1);
    expect((await client.listNotifications({}, await as(userId))).unreadCount).toBe(1);
  });

  test("a malformed body goes to the DLQ, and the next good message is still processed", async () => {
    const dlqBefore = await queueDepth(`${eventsQueue}.dlq`);
    const rowsBefore = await countAll();
    await publishRaw(events.orderPlaced.routingKey, new Uint8Array([0xff, 0xff, 0xff, 0xff]));
    const good = await publish(events.userRegistered, { userId: crypto.randomUUID(), displayName: "Cy" });
    expect(await handled(good)).toEqual(["created"]);
    await eventually(async () => (await queueDepth(`${eventsQueue}.dlq`)) === dlqBefore + 1, { what: "the DLQ to hold the malformed message" });
    expect(await countAll()).toBe(rowsBefore + 1);
    expect(await queueDepth(eventsQueue)).toBe(0);
  });

  test("an event with an empty or malformed user_id is dead-lettered at once, not retried", async () => {
    const dlqBefore = await queueDepth(`${eventsQueue}.dlq`);
    const empty = await publish(events.orderCancelled, { orderId: crypto.randomUUID(), userId: "", reason: "x" });
    const garbled = await publish(events.paymentCaptured, { orderId: crypto.randomUUID(), userId: "not-a-user", amount: usd(1n) });
    expect(await handled(empty)).toEqual(["PoisonMessageError"]);
    expect(await handled(garbled)).toEqual(["PoisonMessageError"]);
    await eventually(async () => (await queueDepth(`${eventsQueue}.dlq`)) === dlqBefore + 2, { what: "the DLQ to hold both" });
    expect(outcomes.get(empty)).toHaveLength(1); // no redelivery
    expect([...(await rowsOf(empty)), ...(await rowsOf(garbled))]).toEqual([]);
  });
});

describe("a consumer killed before its ack", () => {
  test("after reconnecting, the redelivered message still makes one notification", async () => {
    const userId = crypto.randomUUID();
    let committed!: () => void;
    const effectCommitted = new Promise<void>((resolve) => (committed = resolve));
    // The first consumer dies between its effect's commit and its ack: its handler commits,
    // then the connection closes under it, and the ack never comes.
    const victim = await Broker.connect(vhost.url, { service: "notifications" });
    const killing = recorded(notificationHandlers(db)).map(
      (h): EventHandler => ({
        ...h,
        handle: async (message, delivery) => {
          await h.handle(message, delivery);
          await victim.close();
          committed();
          return new Promise<never>(() => {});
        },
      }),
    );
    await consumeEvents(victim, db, killing);
    const id = await publish(events.orderPlaced, { orderId: crypto.randomUUID(), userId, total: usd(4250n) });
    await effectCommitted;
    expect(await rowsOf(id)).toHaveLength(1);
    // Unacknowledged, the message goes back to the queue once the broker sees the connection gone.
    await eventually(async () => (await queueDepth(eventsQueue)) === 1, { what: "the unacknowledged message back in the queue" });

    const revived = await startConsumer();
    try {
      expect(await handled(id, 2)).toEqual(["created", "duplicate"]);
      expect(await rowsOf(id)).toHaveLength(1);
      await eventually(async () => (await queueDepth(eventsQueue)) === 0, { what: "the queue to drain" });
      const page = await client.listNotifications({}, await as(userId));
      expect(page.notifications).toHaveLength(1);
      expect(page.unreadCount).toBe(1);
    } finally {
      await revived.close();
    }
  });
});

// ---- the RPCs ----

describe("ListNotifications", () => {
  // 25 notifications; several share a millisecond, so the id breaks ties.
  const owner = crypto.randomUUID();
  const offsets = [0, 1, 1, 1, 2, 3, 5, 5, 8, 13, 21, 21, 34, 55, 89, 89, 89, 144, 233, 377, 610, 987, 987, 1597, 2584];
  let expected: string[];
  beforeAll(async () => {
    expected = newestFirst(await seed(owner, offsets));
  });

  test("pages newest first through every notification exactly once", async () => {
    const { ids, pages, counts } = await listAll(owner, 7);
    expect(ids).toEqual(expected);
    expect(pages).toBe(4);
    expect(counts).toEqual([25]);
  });

  test("a notification arriving between pages is neither repeated nor makes another one skipped", async () => {
    const user = crypto.randomUUID();
    const rows = await seed(user, [10, 20, 30, 40, 50, 60]);
    const first = await client.listNotifications({ pageSize: 2 }, await as(user));
    const [arrived] = await seed(user, [70]);
    const ids = first.notifications.map((n) => n.id);
    let pageToken = first.nextPageToken;
    while (pageToken) {
      const page = await client.listNotifications({ pageSize: 2, pageToken }, await as(user));
      ids.push(...page.notifications.map((n) => n.id));
      pageToken = page.nextPageToken;
    }
    expect(ids).toEqual(newestFirst(rows));
    expect(ids).not.toContain(arrived!.id);
    expect((await client.listNotifications({ pageSize: 1 }, await as(user))).notifications[0]?.id).toBe(arrived!.id);
  });

  test("a page size of 0 means 20", async () => {
    const page = await client.listNotifications({ pageSize: 0 }, await as(owner));
    expect(page.notifications.map((n) => n.id)).toEqual(expected.slice(0, 20));
    expect(page.nextPageToken).not.toBe("");
  });

  test("unread_only lists only unread ones, and unread_count counts them", async () => {
    const user = crypto.randomUUID();
    const unread = await seed(user, [1, 2, 3, 4, 5]);
    const read = await seed(user, [2, 3, 6], true);
    const all = await client.listNotifications({ pageSize: 100 }, await as(user));
    expect(all.notifications.map((n) => n.id)).toEqual(newestFirst([...unread, ...read]));
    expect(
      all.notifications
        .filter((n) => n.read)
        .map((n) => n.id)
        .sort(),
    ).toEqual(read.map((r) => r.id).sort());
    expect(all.unreadCount).toBe(5);
    const { ids, counts } = await listAll(user, 2, true);
    expect(ids).toEqual(newestFirst(unread));
    expect(counts).toEqual([5]);
  });

  test("a later page is read from the user's index from the cursor on, with no sort", async () => {
    const [last] = await db.db.select().from(notifications).where(eq(notifications.id, expected[6]!));
    // With a few rows the planner would rightly prefer a scan; forbid it to see the index serves the query.
    const plan = await db.sql.begin(async (tx) => {
      await tx`set local enable_seqscan = off`;
      await tx`set local enable_bitmapscan = off`;
      return tx`explain select * from notifications where user_id = ${owner} and (created_at, id) < (${last!.createdAt.toISOString()}::timestamptz, ${last!.id}::uuid)
        order by created_at desc, id desc limit 8`;
    });
    const text = plan.map((r) => String(r["QUERY PLAN"])).join("\n");
    expect(text).toContain("Index Scan using notifications_user_created_id_idx");
    expect(text).toMatch(/Index Cond: .*ROW\(created_at, id\) < ROW/);
    expect(text).not.toContain("Sort");
  });

  test("a bad page_size is INVALID_ARGUMENT naming page_size", async () => {
    for (const pageSize of [-1, 101, 2 ** 31 - 1]) {
      const err = await rpcError(client.listNotifications({ pageSize }, await as(owner)));
      expect(err.code).toBe(status.INVALID_ARGUMENT);
      expect(err.message).toContain("page_size");
    }
  });

  test("a forged, garbled or other listing's page token is INVALID_ARGUMENT naming page_token", async () => {
    const forged = Buffer.from(JSON.stringify({ v: 1, l: "false", c: { createdAtMs: 0, id: "x" } })).toString("base64url");
    for (const pageToken of ["not a token!", "eyJ2IjoyfQ", forged, "a".repeat(2000)]) {
      const err = await rpcError(client.listNotifications({ pageToken }, await as(owner)));
      expect(err.code).toBe(status.INVALID_ARGUMENT);
      expect(err.message).toContain("page_token");
    }
    const { nextPageToken } = await client.listNotifications({ pageSize: 2 }, await as(owner));
    const err = await rpcError(client.listNotifications({ pageSize: 2, pageToken: nextPageToken, unreadOnly: true }, await as(owner)));
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.message).toContain("page_token: was issued for a listing with unread_only=false");
  });
});

describe("MarkRead", () => {
  const unreadOf = async (userId: string) => (await client.listNotifications({ pageSize: 1 }, await as(userId))).unreadCount;
  const readAt = async (ids: string[]) =>
    (await db.db.select({ id: notifications.id, readAt: notifications.readAt }).from(notifications).where(inArray(notifications.id, ids))).filter(
      (r) => r.readAt,
    );

  test("marks the caller's named notifications read and says how many went from unread to read", async () => {
    const user = crypto.randomUUID();
    const [a, b, c] = await seed(user, [1, 2, 3]);
    const [done] = await seed(user, [4], true);
    expect((await client.markRead({ ids: [a!.id, b!.id, done!.id, a!.id.toUpperCase()] }, await as(user))).marked).toBe(2);
    expect(await unreadOf(user)).toBe(1);
    const page = await client.listNotifications({ pageSize: 10 }, await as(user));
    expect(page.notifications.filter((n) => !n.read).map((n) => n.id)).toEqual([c!.id]);
    expect((await client.markRead({ ids: [a!.id] }, await as(user))).marked).toBe(0);
  });

  test("all marks every unread notification of the caller, and no one else's", async () => {
    const user = crypto.randomUUID();
    const other = crypto.randomUUID();
    await seed(user, [1, 2, 3, 4]);
    await seed(user, [5], true);
    await seed(other, [1, 2]);
    expect((await client.markRead({ all: true }, await as(user))).marked).toBe(4);
    expect(await unreadOf(user)).toBe(0);
    expect(await unreadOf(other)).toBe(2);
    expect((await client.markRead({ all: true }, await as(user))).marked).toBe(0);
  });

  test("user B cannot list or mark user A's notifications: A's ids are silently ignored", async () => {
    const a = crypto.randomUUID();
    const b = crypto.randomUUID();
    const mine = await seed(a, [1, 2]);
    await seed(b, [3]);
    const seenByB = await client.listNotifications({ pageSize: 100 }, await as(b));
    expect(seenByB.notifications.map((n) => n.title)).toEqual(["Seeded 0"]);
    expect(seenByB.notifications.some((n) => mine.some((m) => m.id === n.id))).toBe(false);
    expect((await client.markRead({ ids: mine.map((m) => m.id) }, await as(b))).marked).toBe(0);
    expect(await readAt(mine.map((m) => m.id))).toEqual([]);
    expect(await unreadOf(a)).toBe(2);
    expect(await unreadOf(b)).toBe(1);
  });

  test("bad input is INVALID_ARGUMENT naming the field, and nothing changes", async () => {
    const user = crypto.randomUUID();
    const rows = await seed(user, [1, 2]);
    const id = rows[0]!.id;
    const cases: [MessageInitShape<typeof MarkReadRequestSchema>, string][] = [
      [{}, "ids: must name 1 to 100 notifications, or set all"],
      [{ ids: [id], all: true }, "all: cannot be set together with ids"],
      [{ ids: Array.from({ length: 101 }, () => id) }, "ids: must name at most 100 notifications, got 101"],
      [{ ids: [id, "42; drop table notifications"] }, "ids[1]: must be a notification id"],
    ];
    for (const [request, message] of cases) {
      const err = await rpcError(client.markRead(request, await as(user)));
      expect(err.code).toBe(status.INVALID_ARGUMENT);
      expect(err.message).toContain(message);
    }
    expect(await unreadOf(user)).toBe(2);
    expect(await readAt(rows.map((r) => r.id))).toEqual([]);
  });
});

describe("access", () => {
  test("without a token both RPCs are UNAUTHENTICATED", async () => {
    expect((await rpcError(client.listNotifications({}))).code).toBe(status.UNAUTHENTICATED);
    expect((await rpcError(client.markRead({ all: true }))).code).toBe(status.UNAUTHENTICATED);
  });

  test("a service token is PERMISSION_DENIED: these calls act for a user", async () => {
    const options = await grpc.auth({ sub: "service:orders", roles: ["service"] });
    // Both calls run at once; each is handled from the start, so the second one's rejection is
    // never unhandled while the first is awaited (bun reports that as a failure).
    for (const err of await Promise.all([rpcError(client.listNotifications({}, options)), rpcError(client.markRead({ all: true }, options))])) {
      expect(err.code).toBe(status.PERMISSION_DENIED);
      expect(err.message).toContain("service token");
    }
  });
});
