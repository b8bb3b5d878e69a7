import { type DescMessage, fromBinary, type Message, type MessageShape } from "@bufbuild/protobuf";
import { context, propagation, type Span, SpanKind, trace } from "@opentelemetry/api";
import { hostname } from "node:os";
import amqp, {
  type Message as AmqpMessage,
  type Channel,
  type ChannelModel,
  type ConfirmChannel,
  type ConsumeMessage,
  type RecoveringChannelModel,
} from "amqplib";
import { log } from "../log.ts";
import {
  messageHandling,
  messagesConsumed,
  messagesDeadLettered,
  messagesPublished,
  messagesRedelivered,
  observeLatency,
  queueDepths,
  type QueueDepth,
} from "../metrics.ts";
import { redactUrl } from "../redact-url.ts";
import { extractContext, recordError, tracer } from "../telemetry.ts";
import { deadLetterExchange, type EventType, eventsExchange } from "./events.ts";
import { attemptOf, deadLetterQueueName, eventRoutingKey, type RetryPolicy, redeliveryCopy, retryDelayMs, retryPolicy, retryQueueName } from "./redelivery.ts";

/** A message to publish: what an outbox row holds. */
export interface OutgoingMessage {
  /** The message id (the outbox row id); consumers deduplicate by it. */
  id: string;
  routingKey: string;
  payload: Uint8Array;
  /** Headers, among them the W3C traceparent of the change that caused the event. */
  headers: Record<string, string>;
}

/** What a handler knows about the message besides its body. */
export interface Delivery {
  messageId: string;
  routingKey: string;
  /** Which attempt this is: 1 the first time, then one more after each failed attempt's delayed retry. */
  attempt: number;
  /** How many times it was delivered before (0 the first time): earlier attempts and redeliveries of this one. */
  deliveryCount: number;
}

/**
 * Handles one event type. Throwing has the message delivered again after a growing delay (see
 * {@link ConsumerSpec.retry}), and dead-lettered once its attempts are used up;
 * PoisonMessageError dead-letters it at once.
 * Returns "duplicate" when the inbox shows the message was handled before.
 */
export interface EventHandler<S extends DescMessage = DescMessage> {
  event: EventType<S>;
  // biome-ignore lint/suspicious/noConfusingVoidType: a handler with nothing to report returns nothing; "duplicate" says the inbox had seen it.
  handle: (message: MessageShape<S>, delivery: Delivery) => Promise<void | "duplicate">;
}

/** A typed handler of one event type, for {@link ConsumerSpec.handlers}. */
export function on<S extends DescMessage>(event: EventType<S>, handle: EventHandler<S>["handle"]): EventHandler {
  return { event, handle } as unknown as EventHandler;
}

/** Thrown by a handler for a message that can never be processed: it goes to the DLQ at once. */
export class PoisonMessageError extends Error {
  override name = "PoisonMessageError";
}

/** A durable consumer: one quorum queue bound to the events it handles. */
export interface ConsumerSpec {
  /** The queue, `<service>.<purpose>`, e.g. "notifications.events"; its DLQ is `<queue>.dlq`. */
  queue: string;
  /** One handler per event type it binds to. */
  handlers: readonly EventHandler[];
  /** Unacknowledged messages in flight at once. */
  prefetch?: number;
  /**
   * How a message whose handler fails is retried: after growing delays, then dead-lettered
   * ({@link defaultRetryPolicy}: 8 attempts over about four minutes).
   */
  retry?: Partial<RetryPolicy>;
  /**
   * Deliveries of one copy that is never settled (its consumer dies while handling it, again and
   * again) before the broker dead-letters it. Only a safety net: handler failures are retried by
   * {@link retry}. Part of the queue's declared arguments, so it cannot change for an existing queue.
   */
  deliveryLimit?: number;
}

/**
 * A per-process consumer: every process that declares one gets every event it binds to, on a
 * queue of its own that is exclusive, auto-deleted and non-durable, so it is gone when the
 * process (or its connection) is. For views every replica must keep current (the BFF's live
 * order status); work that must happen once per event belongs on a {@link ConsumerSpec}.
 * Nothing is redelivered: a message that cannot be handled is logged and dropped, and
 * messages sent while the connection is down are missed.
 */
export interface FanOutSpec {
  /** `<service>.<purpose>`, e.g. "bff.live-orders": the queue's label in metrics and spans, and its name's prefix. */
  name: string;
  /** One handler per event type it binds to. */
  handlers: readonly EventHandler[];
  /** Unacknowledged messages in flight at once. */
  prefetch?: number;
  /** Milliseconds a message waits in the queue before it is dropped, should the process fall behind. */
  messageTtlMs?: number;
  /** Messages the queue holds at most; the oldest are dropped beyond it. */
  maxLength?: number;
}

/** A consumer as the broker runs it: the queue, how it is declared, and what a failure does. */
interface Subscription {
  /** The queue's name on the broker. */
  queue: string;
  /** The queue's name in metrics, spans and logs. */
  label: string;
  handlers: readonly EventHandler[];
  prefetch: number;
  declare: (channel: Channel) => Promise<void>;
  /** Durable consumers retry (by this policy) and dead-letter; fan-out consumers (none) drop what they cannot handle. */
  retry: RetryPolicy | undefined;
}

/** Options of {@link Broker.connect}. */
export interface BrokerOptions {
  /** The connecting service's name (AMQP app id and connection name). */
  service: string;
  /** Give up at start-up after this many failed connection attempts (then keep retrying forever). */
  initialRetries?: number;
}

/**
 * Bazaar's RabbitMQ connection: publishes with publisher confirms (pipelined: a batch is sent
 * at once and each message settles on its own ack), consumes from durable quorum queues with
 * manual acks, bounded prefetch, delayed retries and a dead-letter queue (see ./redelivery.ts),
 * and recovers from a lost connection by reconnecting with backoff and declaring the topology
 * and consumers again.
 */
export class Broker {
  private publisher: ConfirmChannel | undefined;
  private readonly consumers: Subscription[] = [];
  /** Called after each (re)connection is set up, e.g. to publish what waited meanwhile. */
  private readonly connectedListeners: (() => void)[] = [];
  private readonly consumerChannels = new Map<string, Channel>();
  private model: ChannelModel | undefined;
  private closing = false;
  /** Retry copies the broker returned as unroutable (their retry queue is gone), by {@link retryKey}. */
  private readonly returnedRetries = new Set<string>();
  /** The channel the queue gauges are read on (a failed check closes a channel: not the publisher's). */
  private depthChannel: Promise<Channel> | undefined;

  private constructor(
    private readonly connection: RecoveringChannelModel,
    private readonly service: string,
  ) {}

  /** Connects (retrying at start) and declares the exchanges. */
  static async connect(url: string, options: BrokerOptions): Promise<Broker> {
    let broker: Broker | undefined;
    const connection = await amqp.connect(withHeartbeat(url), {
      clientProperties: { connection_name: options.service },
      recovery: {
        // Back within about a second of RabbitMQ's return (doubling from 100 ms, capped at 1 s).
        initialDelay: 100,
        maxDelay: 1_000,
        initialMaxRetries: options.initialRetries ?? 5,
        maxRetries: Number.POSITIVE_INFINITY,
        waitForConnect: false,
        // Runs after every (re)connection: channels die with their connection.
        setup: async (model: ChannelModel) => {
          if (broker) await broker.setup(model);
        },
      },
    });
    broker = new Broker(connection, options.service);
    connection.on("error", (err: Error) => log.warn("rabbitmq connection error", { err: err.message }));
    connection.on("disconnect", (err: Error) => {
      if (broker?.closing) return;
      log.warn("lost the rabbitmq connection; reconnecting", { err: err?.message });
      if (broker) broker.publisher = undefined;
    });
    connection.on("reconnect-scheduled", ({ attempt, delay }: { attempt: number; delay: number }) =>
      log.info("reconnecting to rabbitmq", { attempt, delayMs: delay }),
    );
    try {
      await connection.waitForConnect();
    } catch (err) {
      throw new Error(`cannot connect to RabbitMQ at ${redactUrl(url)}: ${(err as Error).message}`);
    }
    // With waitForConnect: false, `broker` exists before the first connection's setup runs.
    if (!broker.model) throw new Error("connected to RabbitMQ but the channel setup did not run");
    return broker;
  }

  private async setup(model: ChannelModel): Promise<void> {
    this.model = model;
    const channel = await model.createConfirmChannel();
    channel.on("error", (err: Error) => log.warn("rabbitmq publish channel error", { err: err.message }));
    channel.on("close", () => {
      if (this.publisher === channel) this.publisher = undefined;
    });
    await channel.assertExchange(eventsExchange, "topic", { durable: true });
    await channel.assertExchange(deadLetterExchange, "direct", { durable: true });
    // A mandatory message that no queue takes comes back before its confirm.
    channel.on("return", (msg: AmqpMessage) => {
      if (msg.properties.messageId) this.returnedRetries.add(retryKey(msg.properties.messageId, attemptOf(msg)));
    });
    this.publisher = channel;
    this.depthChannel = undefined;
    this.consumerChannels.clear();
    for (const spec of this.consumers) await this.startConsumer(model, spec);
    log.info("rabbitmq ready", { consumers: this.consumers.map((c) => c.queue) });
    for (const listener of this.connectedListeners) listener();
  }

  /** Calls `listener` each time the broker is connected again (and ready to publish). */
  onConnected(listener: () => void): void {
    this.connectedListeners.push(listener);
  }

  /** True while a channel to publish on is open. */
  get connected(): boolean {
    return this.publisher !== undefined;
  }

  /**
   * Publishes a batch with confirms and reports which messages the broker acknowledged.
   * All are sent before any confirm is awaited. Throws only if there is no connection.
   */
  async publish(messages: readonly OutgoingMessage[]): Promise<{ acked: string[]; failed: { id: string; error: string }[] }> {
    const channel = this.publisher;
    if (!channel) throw new Error("not connected to RabbitMQ");
    // Each message's span is a child of the change that wrote it (its headers) and links to the
    // span that sends the batch (the outbox relay's claim), a trace of its own.
    const batch = trace.getSpanContext(context.active());
    const links = batch ? [{ context: batch }] : [];
    const settled = await Promise.allSettled(
      messages.map(
        (m) =>
          new Promise<void>((resolve, reject) => {
            const parent = extractContext(m.headers);
            const span = tracer().startSpan(
              `${m.routingKey} publish`,
              {
                kind: SpanKind.PRODUCER,
                attributes: {
                  "messaging.system": "rabbitmq",
                  "messaging.operation.type": "send",
                  "messaging.destination.name": eventsExchange,
                  "messaging.rabbitmq.destination.routing_key": m.routingKey,
                  "messaging.message.id": m.id,
                },
                links,
              },
              parent,
            );
            // The consumer's span becomes a child of this publish span.
            const headers: Record<string, string> = { ...m.headers };
            propagation.inject(trace.setSpan(context.active(), span), headers);
            try {
              channel.publish(
                eventsExchange,
                m.routingKey,
                Buffer.from(m.payload),
                {
                  messageId: m.id,
                  type: m.routingKey,
                  appId: this.service,
                  contentType: "application/x-protobuf",
                  persistent: true,
                  timestamp: Math.floor(Date.now() / 1000),
                  headers,
                },
                (err: unknown) => {
                  if (err) {
                    recordError(span, err);
                    reject(err instanceof Error ? err : new Error(String(err)));
                  } else resolve();
                  span.end();
                },
              );
            } catch (err) {
              recordError(span, err);
              span.end();
              reject(err);
            }
          }),
      ),
    );
    const acked: string[] = [];
    const failed: { id: string; error: string }[] = [];
    settled.forEach((result, i) => {
      const m = messages[i]!;
      if (result.status === "fulfilled") acked.push(m.id);
      else failed.push({ id: m.id, error: (result.reason as Error)?.message ?? "nacked" });
      messagesPublished.inc({ routing_key: m.routingKey, outcome: result.status === "fulfilled" ? "acked" : "failed" });
    });
    return { acked, failed };
  }

  /** Starts a durable consumer now (if connected) and after every reconnection. */
  async consume(spec: ConsumerSpec): Promise<void> {
    const retry = retryPolicy(spec.retry);
    await this.subscribe({
      queue: spec.queue,
      label: spec.queue,
      handlers: spec.handlers,
      prefetch: spec.prefetch ?? 16,
      declare: (channel) => assertConsumerQueues(channel, { ...spec, retry }),
      retry,
    });
    queueDepths.from(() => this.queueDepths());
  }

  /**
   * Starts a fan-out consumer now (if connected) and after every reconnection, declaring its
   * queue again each time (the old one went with the old connection). Returns the queue's name.
   */
  async fanOut(spec: FanOutSpec): Promise<string> {
    if (!/^[\w.-]{1,100}$/.test(spec.name))
      throw new Error(`fan-out consumer name ${JSON.stringify(spec.name)} must be 1-100 letters, digits, dots, dashes or underscores`);
    const queue = `${spec.name}.${hostname()}.${process.pid}.${crypto.randomUUID().slice(0, 8)}`;
    const args: Record<string, number> = {};
    if (spec.messageTtlMs !== undefined) args["x-message-ttl"] = spec.messageTtlMs;
    if (spec.maxLength !== undefined) args["x-max-length"] = spec.maxLength;
    await this.subscribe({
      queue,
      label: spec.name,
      handlers: spec.handlers,
      prefetch: spec.prefetch ?? 100,
      declare: async (channel) => {
        await channel.assertExchange(eventsExchange, "topic", { durable: true });
        await channel.assertQueue(queue, { exclusive: true, autoDelete: true, durable: false, arguments: args });
        for (const h of spec.handlers) await channel.bindQueue(queue, eventsExchange, h.event.routingKey);
      },
      retry: undefined,
    });
    return queue;
  }

  /**
   * The depth of every durable consumer's work queue and dead-letter queue, and the consumers on
   * the work queue, as the broker reports them now (for the queue gauges, at scrape time).
   */
  private async queueDepths(): Promise<QueueDepth[]> {
    const model = this.model;
    const durable = this.consumers.filter((c) => c.retry);
    if (!model || !this.publisher || durable.length === 0) return [];
    this.depthChannel ??= model.createChannel().then(
      (channel) => {
        // A check of a queue that is gone closes the channel with a 404: the next scrape opens another.
        channel.on("error", () => {});
        channel.on("close", () => (this.depthChannel = undefined));
        return channel;
      },
      (err: unknown) => {
        this.depthChannel = undefined;
        throw err;
      },
    );
    const channel = await this.depthChannel;
    const depths: QueueDepth[] = [];
    for (const sub of durable) {
      const work = await channel.checkQueue(sub.queue);
      const dead = await channel.checkQueue(deadLetterQueueName(sub.queue));
      depths.push({ queue: sub.label, messages: work.messageCount, consumers: work.consumerCount, deadLettered: dead.messageCount });
    }
    return depths;
  }

  private async subscribe(subscription: Subscription): Promise<void> {
    this.consumers.push(subscription);
    if (this.model && this.publisher) await this.startConsumer(this.model, subscription);
  }

  private async startConsumer(model: ChannelModel, sub: Subscription): Promise<void> {
    const channel = await model.createChannel();
    channel.on("error", (err: Error) => log.warn("rabbitmq consumer channel error", { queue: sub.label, err: err.message }));
    await sub.declare(channel);
    await channel.prefetch(sub.prefetch);
    const byKey = new Map(sub.handlers.map((h) => [h.event.routingKey, h]));
    await channel.consume(sub.queue, (msg) => {
      if (msg) void this.deliver(channel, sub, byKey, msg);
    });
    this.consumerChannels.set(sub.queue, channel);
  }

  private async deliver(channel: Channel, sub: Subscription, byKey: Map<string, EventHandler>, msg: ConsumeMessage): Promise<void> {
    const routingKey = eventRoutingKey(msg);
    const messageId = msg.properties.messageId as string | undefined;
    const attempt = attemptOf(msg);
    const deliveryCount = attempt - 1 + Number(msg.properties.headers?.["x-delivery-count"] ?? 0);
    const started = performance.now();
    // The processing span, once there is one: its trace id is the handling time's exemplar.
    let span: Span | undefined;
    const outcome = (result: string) => {
      messagesConsumed.inc({ queue: sub.label, routing_key: routingKey, outcome: result });
      observeLatency(messageHandling, { queue: sub.label, routing_key: routingKey, outcome: result }, (performance.now() - started) / 1000, span);
    };
    // The channel can close under a running handler (a lost connection, or close()): the broker
    // then hands the unacknowledged message out again, so settling it here is moot, not an error.
    const settle = (op: () => void) => {
      try {
        op();
      } catch (err) {
        log.warn("the channel closed before the message was settled; it will be delivered again", {
          queue: sub.label,
          routingKey,
          messageId,
          err: (err as Error).message,
        });
      }
    };
    // Rejected without requeue: a durable queue dead-letters the message, a fan-out queue (no
    // dead-letter exchange) drops it.
    const reject = (reason: DeadLetterReason, why: string, err?: unknown) => {
      if (sub.retry) {
        log.error("dead-lettered a message", {
          queue: sub.label,
          deadLetterQueue: deadLetterQueueName(sub.queue),
          routingKey,
          messageId,
          attempts: attempt,
          reason,
          why,
          err,
        });
        messagesDeadLettered.inc({ queue: sub.label, reason });
        outcome("dead_lettered");
      } else {
        log.warn("dropped a message", { queue: sub.label, routingKey, messageId, why, err });
        outcome("dropped");
      }
      settle(() => channel.reject(msg, false));
    };
    const handler = byKey.get(routingKey);
    if (!handler) return reject("no_handler", `no handler for routing key ${routingKey}`);
    const { event } = handler;
    if (!messageId) return reject("malformed", "the message has no message id");
    let message: Message;
    try {
      message = fromBinary(event.schema, msg.content);
    } catch (err) {
      return reject("malformed", `the body is not a valid ${event.schema.typeName}`, err);
    }
    const carrier: Record<string, string> = {};
    for (const [k, v] of Object.entries(msg.properties.headers ?? {})) if (typeof v === "string") carrier[k] = v;
    span = tracer().startSpan(
      `${routingKey} process`,
      {
        kind: SpanKind.CONSUMER,
        attributes: {
          "messaging.system": "rabbitmq",
          "messaging.operation.type": "process",
          "messaging.destination.name": sub.label,
          "messaging.rabbitmq.destination.routing_key": routingKey,
          "messaging.message.id": messageId,
          "messaging.rabbitmq.delivery_count": deliveryCount,
        },
      },
      extractContext(carrier),
    );
    try {
      const result = await context.with(trace.setSpan(context.active(), span), () =>
        handler.handle(message, { messageId, routingKey, attempt, deliveryCount }),
      );
      settle(() => channel.ack(msg));
      outcome(result === "duplicate" ? "duplicate" : "processed");
    } catch (err) {
      recordError(span, err);
      const why = (err as Error)?.message ?? String(err);
      // A fan-out consumer has nothing to retry with: what cannot be handled now never can.
      if (err instanceof PoisonMessageError || !sub.retry) reject("poison", why, err);
      else if (attempt >= sub.retry.attempts) reject("retries_exhausted", `${why} (attempt ${attempt} of ${sub.retry.attempts}, the last)`, err);
      else await this.retryLater(channel, sub, msg, { routingKey, messageId, attempt, policy: sub.retry, err, settle, outcome });
    } finally {
      span.end();
    }
  }

  /**
   * Sends a copy of a failed delivery to the retry queue of its attempt, to come back after the
   * policy's delay, and acknowledges the original once the broker has confirmed the copy: the
   * message is in one queue or the other at every moment. Without a confirmed copy (no
   * publishing channel) it is handed back to the work queue after the delay instead.
   */
  private async retryLater(
    channel: Channel,
    sub: Subscription,
    msg: ConsumeMessage,
    failure: {
      routingKey: string;
      messageId: string;
      attempt: number;
      policy: RetryPolicy;
      err: unknown;
      settle: (op: () => void) => void;
      outcome: (result: string) => void;
    },
  ): Promise<void> {
    const { routingKey, messageId, attempt, policy, err, settle, outcome } = failure;
    const delayMs = retryDelayMs(policy, attempt);
    const retryQueue = retryQueueName(sub.queue, attempt);
    const { content, publishOptions } = redeliveryCopy(msg, { attempt: attempt + 1, routingKey, expirationMs: delayMs });
    const where = { queue: sub.label, routingKey, messageId, attempt, attempts: policy.attempts, delayMs, err };
    try {
      const publisher = this.publisher;
      if (!publisher) throw new Error("no channel to publish the retry on");
      await new Promise<void>((resolve, reject) => {
        // Mandatory: a retry queue deleted under a running consumer must not swallow the message.
        publisher.sendToQueue(retryQueue, content, { ...publishOptions, mandatory: true }, (nack: unknown) =>
          nack ? reject(new Error(`the broker did not take the retry copy into ${retryQueue}`)) : resolve(),
        );
      });
      const key = retryKey(messageId, attempt + 1);
      if (this.returnedRetries.delete(key)) throw new Error(`queue ${retryQueue} does not exist; the consumer declares it when it (re)connects`);
    } catch (publishErr) {
      log.warn("message handler failed and its retry could not be scheduled; handing it back to the queue after the delay", {
        ...where,
        publishErr: (publishErr as Error).message,
      });
      await Bun.sleep(delayMs);
      settle(() => channel.nack(msg, false, true));
      outcome("retried");
      messagesRedelivered.inc({ queue: sub.label });
      return;
    }
    log.warn(`message handler failed; retrying in ${delayMs} ms`, where);
    settle(() => channel.ack(msg));
    outcome("retried");
    messagesRedelivered.inc({ queue: sub.label });
  }

  /** Stops consuming, waits for in-flight confirms, and closes the connection. */
  async close(): Promise<void> {
    this.closing = true;
    for (const channel of this.consumerChannels.values()) await channel.close().catch(() => {});
    await this.publisher?.waitForConfirms().catch(() => {});
    await this.connection.close().catch(() => {});
  }
}

/** Names one retry copy: its message id and the attempt it is for. */
function retryKey(messageId: string, attempt: number): string {
  return `${messageId}\u0000${attempt}`;
}

/** Why a durable consumer dead-lettered a message: the `reason` label of `bazaar_messages_dead_lettered_total`. */
type DeadLetterReason = "poison" | "malformed" | "no_handler" | "retries_exhausted";

/**
 * Declares a consumer's quorum queue, its DLQ, its retry queues and its bindings.
 *
 * The work queue and the DLQ keep the arguments they were first declared with (RabbitMQ refuses
 * to declare an existing queue with others). The retry queues are new queues beside them, one per
 * attempt that can fail before the last: each holds a message for its own TTL (set per message,
 * so a changed policy needs no new arguments) and then dead-letters it through the default
 * exchange straight back to the work queue, at-least-once.
 */
export async function assertConsumerQueues(
  channel: Channel,
  spec: Pick<ConsumerSpec, "queue" | "handlers" | "deliveryLimit"> & { retry: RetryPolicy },
): Promise<void> {
  await channel.assertExchange(eventsExchange, "topic", { durable: true });
  await channel.assertExchange(deadLetterExchange, "direct", { durable: true });
  const dlq = deadLetterQueueName(spec.queue);
  await channel.assertQueue(dlq, { durable: true, arguments: { "x-queue-type": "quorum" } });
  await channel.bindQueue(dlq, deadLetterExchange, spec.queue);
  for (let failed = 1; failed < spec.retry.attempts; failed++) {
    await channel.assertQueue(retryQueueName(spec.queue, failed), {
      durable: true,
      arguments: {
        "x-queue-type": "quorum",
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": spec.queue,
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
      },
    });
  }
  await channel.assertQueue(spec.queue, {
    durable: true,
    arguments: {
      "x-queue-type": "quorum",
      "x-delivery-limit": spec.deliveryLimit ?? 5,
      "x-dead-letter-exchange": deadLetterExchange,
      "x-dead-letter-routing-key": spec.queue,
      // Dead-letter without loss: the broker keeps the message until the DLQ confirms it.
      "x-dead-letter-strategy": "at-least-once",
      "x-overflow": "reject-publish",
    },
  });
  for (const h of spec.handlers) await channel.bindQueue(spec.queue, eventsExchange, h.event.routingKey);
}

/** Asks for 10 s heartbeats (unless the URL sets its own), so a dead connection is noticed in seconds. */
function withHeartbeat(url: string): string {
  const u = new URL(url);
  if (!u.searchParams.has("heartbeat")) u.searchParams.set("heartbeat", "10");
  return u.toString();
}
