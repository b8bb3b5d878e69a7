import type { Message, Options } from "amqplib";
import { backoffDelayMs } from "../backoff.ts";

/**
 * Delayed redelivery of a durable consumer's messages, and the names of its retry and
 * dead-letter queues. A delivery whose handler fails is published again, with its attempt
 * number in a header, to a retry queue where it waits out a per-message TTL; the retry queue
 * dead-letters it back to the work queue when the TTL expires. All of it lives in RabbitMQ
 * (no plugin), so a message waiting for its retry survives a restart of the consumer.
 *
 * One retry queue per attempt (`<queue>.retry.<attempt that failed>`): a queue expires only
 * the message at its head, so queues holding only similar delays keep a short wait from
 * queueing behind a long one (at most the jitter's spread).
 */

/** How a durable consumer retries a message whose handler fails, before dead-lettering it. */
export interface RetryPolicy {
  /** Deliveries in all, the first included, before a message that keeps failing goes to the DLQ. */
  attempts: number;
  /** The wait before the first retry; each further retry waits twice as long as the one before. */
  initialDelayMs: number;
  /** The longest wait between two attempts. */
  maxDelayMs: number;
}

/** 8 attempts, waiting 2, 4, 8, 16, 32, 64 and 120 s between them: about four minutes in all. */
export const defaultRetryPolicy: RetryPolicy = { attempts: 8, initialDelayMs: 2_000, maxDelayMs: 120_000 };

/** Each wait varies by up to this fraction either way, so messages that failed together do not all come back together. */
const jitter = 0.2;

/** The header holding a delivery's attempt number (1 the first time; absent means 1). */
export const attemptHeader = "bazaar-attempt";
/**
 * The header holding the event's routing key on a message that came back through a retry queue
 * or a replay: the broker routed it by the queue's name, so its own routing key is not the event's.
 */
export const routingKeyHeader = "bazaar-routing-key";

/** The policy of a consumer, its options laid over the defaults and checked. */
export function retryPolicy(options: Partial<RetryPolicy> = {}): RetryPolicy {
  const policy = { ...defaultRetryPolicy, ...options };
  if (!Number.isInteger(policy.attempts) || policy.attempts < 1 || policy.attempts > 50)
    throw new Error(`retry attempts must be a whole number from 1 to 50, got ${policy.attempts}`);
  if (!(policy.initialDelayMs >= 1) || !(policy.maxDelayMs >= policy.initialDelayMs))
    throw new Error(`retry delays must be at least 1 ms and maxDelayMs at least initialDelayMs, got ${policy.initialDelayMs} and ${policy.maxDelayMs}`);
  return policy;
}

/** Milliseconds to wait after attempt `failed` (1-based) before the next: doubling from the initial delay, capped, with jitter. */
export function retryDelayMs(policy: RetryPolicy, failed: number, random: () => number = Math.random): number {
  return Math.max(1, Math.round(backoffDelayMs({ ...policy, jitter }, failed, random())));
}

/** The dead-letter queue of a durable consumer's queue. */
export function deadLetterQueueName(queue: string): string {
  return `${queue}.dlq`;
}

/** The queue where a message waits after its attempt `failed` failed. */
export function retryQueueName(queue: string, failed: number): string {
  return `${queue}.retry.${failed}`;
}

/** The attempt a delivered message is on: its {@link attemptHeader}, 1 when absent or not a positive whole number. */
export function attemptOf(msg: Message): number {
  const value = Number(msg.properties.headers?.[attemptHeader]);
  return Number.isInteger(value) && value >= 1 ? value : 1;
}

/**
 * The event's routing key: the header a retry or replay set, else (for a message dead-lettered
 * from its first delivery) the key it was first published with, else the message's own.
 */
export function eventRoutingKey(msg: Message): string {
  const headers = msg.properties.headers ?? {};
  const fromHeader = headers[routingKeyHeader];
  if (typeof fromHeader === "string" && fromHeader) return fromHeader;
  const deaths = headers["x-death"];
  if (Array.isArray(deaths) && deaths.length > 0) {
    // The oldest death is last; its routing keys are those the message was published with.
    const keys = (deaths[deaths.length - 1] as { "routing-keys"?: unknown })["routing-keys"];
    if (Array.isArray(keys) && typeof keys[0] === "string") return keys[0];
  }
  return msg.fields.routingKey;
}

/**
 * A copy of `msg` to publish again (straight to a queue, through the default exchange): the same
 * body and properties, the attempt number and event routing key in headers, and none of the
 * broker's dead-lettering headers (they would grow with every round, and describe the copy's
 * past, not where it is now: the DLQ's x-death then tells how this copy got there).
 */
export function redeliveryCopy(
  msg: Message,
  options: { attempt: number; routingKey: string; expirationMs?: number },
): { content: Buffer; publishOptions: Options.Publish } {
  const headers: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(msg.properties.headers ?? {})) {
    if (k === "x-death" || k.startsWith("x-first-death-") || k.startsWith("x-last-death-") || k === "x-delivery-count") continue;
    headers[k] = v;
  }
  headers[attemptHeader] = options.attempt;
  headers[routingKeyHeader] = options.routingKey;
  const p = msg.properties;
  const publishOptions: Options.Publish = { headers, persistent: true };
  if (p.messageId) publishOptions.messageId = p.messageId;
  if (p.type) publishOptions.type = p.type;
  if (p.appId) publishOptions.appId = p.appId;
  if (p.contentType) publishOptions.contentType = p.contentType;
  if (p.contentEncoding) publishOptions.contentEncoding = p.contentEncoding;
  if (p.correlationId) publishOptions.correlationId = p.correlationId;
  if (p.timestamp) publishOptions.timestamp = p.timestamp;
  if (options.expirationMs !== undefined) publishOptions.expiration = String(options.expirationMs);
  return { content: msg.content, publishOptions };
}
