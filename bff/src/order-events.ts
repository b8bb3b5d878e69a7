import { hostname } from "node:os";
import { fromBinary } from "@bufbuild/protobuf";
import { type Timestamp, timestampDate } from "@bufbuild/protobuf/wkt";
import { context, trace } from "@opentelemetry/api";
import amqp, { type Channel, type ChannelModel, type ConsumeMessage } from "amqplib";
import { events, eventsExchange } from "@bazaar/platform/messaging/events";
import { log } from "@bazaar/platform/log";
import { messagesConsumed } from "@bazaar/platform/metrics";
import { extractContext, recordError, SpanKind, tracer } from "@bazaar/platform/telemetry";
import type { OrderStatusEvent } from "./live-orders.ts";

/** The queue's name in metrics and spans (the real name carries the host and process). */
const queueLabel = "bff.live-orders";

function occurredAt(t: Timestamp | undefined): number {
  return t ? timestampDate(t).getTime() : Date.now();
}

/** The order events the BFF follows, each turned into the status change it reports. */
const handlers = new Map<string, (body: Uint8Array, messageId: string) => OrderStatusEvent>([
  [
    events.orderPlaced.routingKey,
    (body, messageId) => {
      const e = fromBinary(events.orderPlaced.schema, body);
      return { messageId, orderId: e.orderId, userId: e.userId, status: "PENDING", cancelReason: "", occurredAt: occurredAt(e.occurTime) };
    },
  ],
  [
    events.orderConfirmed.routingKey,
    (body, messageId) => {
      const e = fromBinary(events.orderConfirmed.schema, body);
      return { messageId, orderId: e.orderId, userId: e.userId, status: "CONFIRMED", cancelReason: "", occurredAt: occurredAt(e.occurTime) };
    },
  ],
  [
    events.orderCancelled.routingKey,
    (body, messageId) => {
      const e = fromBinary(events.orderCancelled.schema, body);
      return { messageId, orderId: e.orderId, userId: e.userId, status: "CANCELLED", cancelReason: e.reason, occurredAt: occurredAt(e.occurTime) };
    },
  ],
]);

/** A running consumer of order events. */
export interface OrderEventsConsumer {
  /** The queue's name on the broker. */
  readonly queue: string;
  close(): Promise<void>;
}

/**
 * Follows order events for live order status. Unlike the services' consumers (one durable
 * queue shared by all replicas, so each event is handled once), every BFF replica needs every
 * event — the user's stream may be open on any of them — so each process declares a queue of
 * its own: exclusive, auto-deleted and non-durable, gone when the process (or its connection)
 * is. Messages it misses while disconnected are not redelivered: a live view is a nicety, the
 * orders service is the truth, and the browser reloads it on reconnect. The platform Broker
 * only makes durable quorum queues, hence amqplib here, with the same connection recovery.
 */
export async function consumeOrderEvents(url: string, onEvent: (event: OrderStatusEvent) => void): Promise<OrderEventsConsumer> {
  const queue = `bff.live-orders.${hostname()}.${process.pid}.${crypto.randomUUID().slice(0, 8)}`;
  let channel: Channel | undefined;
  let closing = false;

  const deliver = (ch: Channel, msg: ConsumeMessage) => {
    const routingKey = msg.fields.routingKey;
    const messageId = (msg.properties.messageId as string | undefined) ?? "";
    const carrier: Record<string, string> = {};
    for (const [k, v] of Object.entries(msg.properties.headers ?? {})) if (typeof v === "string") carrier[k] = v;
    const span = tracer().startSpan(
      `${routingKey} process`,
      {
        kind: SpanKind.CONSUMER,
        attributes: {
          "messaging.system": "rabbitmq",
          "messaging.operation.type": "process",
          "messaging.destination.name": queueLabel,
          "messaging.rabbitmq.destination.routing_key": routingKey,
          "messaging.message.id": messageId,
        },
      },
      extractContext(carrier),
    );
    let outcome = "processed";
    try {
      const parse = handlers.get(routingKey);
      if (!parse || !/^[\w-]{1,64}$/.test(messageId)) throw new Error(`unexpected message (routing key ${routingKey}, message id ${JSON.stringify(messageId)})`);
      const event = parse(msg.content, messageId);
      context.with(trace.setSpan(context.active(), span), () => onEvent(event));
    } catch (err) {
      // Nothing to retry: a message that cannot be read now never can. Log it and move on.
      outcome = "dropped";
      recordError(span, err);
      log.warn("ignored an order event", { routingKey, messageId, err: (err as Error).message });
    } finally {
      ch.ack(msg);
      span.end();
      messagesConsumed.inc({ queue: queueLabel, routing_key: routingKey, outcome });
    }
  };

  const setup = async (model: ChannelModel) => {
    const ch = await model.createChannel();
    ch.on("error", (err: Error) => log.warn("rabbitmq live-orders channel error", { err: err.message }));
    await ch.assertExchange(eventsExchange, "topic", { durable: true });
    await ch.assertQueue(queue, {
      exclusive: true,
      autoDelete: true,
      durable: false,
      // Bounded, should this process fall behind: old live updates are worth nothing.
      arguments: { "x-message-ttl": 60_000, "x-max-length": 10_000 },
    });
    for (const routingKey of handlers.keys()) await ch.bindQueue(queue, eventsExchange, routingKey);
    await ch.prefetch(100);
    await ch.consume(queue, (msg) => {
      if (msg) deliver(ch, msg);
    });
    channel = ch;
    log.info("following order events", { queue });
  };

  const connection = await amqp
    .connect(withHeartbeat(url), {
      clientProperties: { connection_name: "bff live-orders" },
      recovery: { initialDelay: 100, maxDelay: 5_000, initialMaxRetries: 5, maxRetries: Number.POSITIVE_INFINITY, setup },
    })
    .catch((err: Error) => {
      const shown = new URL(url);
      if (shown.password) shown.password = "***";
      throw new Error(`cannot follow order events: cannot connect to RabbitMQ at ${shown}: ${err.message}`);
    });
  connection.on("error", (err: Error) => log.warn("rabbitmq connection error", { err: err.message }));
  connection.on("disconnect", (err: Error) => {
    if (!closing) log.warn("lost the rabbitmq connection; live order updates pause until it is back", { err: err?.message });
  });

  return {
    queue,
    close: async () => {
      closing = true;
      await channel?.close().catch(() => {});
      await connection.close().catch(() => {});
    },
  };
}

/** Asks for 10 s heartbeats (unless the URL sets its own), so a dead connection is noticed in seconds. */
function withHeartbeat(url: string): string {
  const u = new URL(url);
  if (!u.searchParams.has("heartbeat")) u.searchParams.set("heartbeat", "10");
  return u.toString();
}
