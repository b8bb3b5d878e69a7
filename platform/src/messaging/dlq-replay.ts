import amqp, { type ConfirmChannel, type GetMessage } from "amqplib";
import { redactUrl } from "../redact-url.ts";
import { attemptOf, deadLetterQueueName, eventRoutingKey, redeliveryCopy } from "./redelivery.ts";

/** Options of {@link replayDeadLetters}. */
export interface ReplayOptions {
  /** Move at most this many messages (all that were in the DLQ when the replay started, unless given). */
  limit?: number;
  /** List what would be moved and leave it in the DLQ. */
  dryRun?: boolean;
}

/** One message a replay moved (or, in a dry run, would move). */
export interface ReplayedMessage {
  messageId: string | undefined;
  routingKey: string;
  /** The attempts it had made before it was dead-lettered. */
  attempts: number;
  /** RabbitMQ's reason for the dead-lettering: "rejected" (by the consumer), "delivery_limit", "expired" … */
  deathReason: string | undefined;
}

/**
 * Moves the messages of a durable consumer's DLQ (`<queue>.dlq`) back to its work queue, each
 * with its attempt count reset, so a consumer whose bug or dependency was fixed gets them again
 * (its inbox still drops any it had handled). Each copy is published with a confirm and its
 * original acknowledged in the DLQ only after the broker confirmed it: a failure midway leaves
 * every message in one queue or the other, at worst in both (the inbox then drops the second).
 *
 * Only the messages in the DLQ when it starts are moved (at most `limit`), so a message that fails
 * again at once and comes back to the DLQ is not replayed in a loop.
 */
export async function replayDeadLetters(amqpUrl: string, queue: string, options: ReplayOptions = {}): Promise<ReplayedMessage[]> {
  const dlq = deadLetterQueueName(queue);
  const connection = await amqp.connect(amqpUrl).catch((err: Error) => {
    throw new Error(`cannot connect to RabbitMQ at ${redactUrl(amqpUrl)}: ${err.message}`);
  });
  try {
    const channel = await connection.createConfirmChannel();
    // A missing queue closes the channel with NOT_FOUND; say which one, in words.
    channel.on("error", () => {});
    const check = async (name: string) =>
      channel.checkQueue(name).catch((err: Error) => {
        throw new Error(`queue ${name} does not exist on ${redactUrl(amqpUrl)} (${err.message}): is ${queue} a consumer's queue, and has its consumer run?`);
      });
    await check(queue);
    const { messageCount } = await check(dlq);
    const budget = Math.min(messageCount, options.limit ?? messageCount);
    const moved: ReplayedMessage[] = [];
    // In a dry run, messages stay unacknowledged until the connection closes, which puts them back.
    for (let i = 0; i < budget; i++) {
      const msg = await channel.get(dlq, { noAck: false });
      if (!msg) break;
      moved.push(describe(msg));
      if (!options.dryRun) await moveBack(channel, queue, msg);
    }
    // Acks have no reply: the channel's close-ok says the broker took them (closing the
    // connection at once can lose them, and the DLQ would keep what was moved).
    await channel.close();
    return moved;
  } finally {
    await connection.close().catch(() => {});
  }
}

async function moveBack(channel: ConfirmChannel, queue: string, msg: GetMessage): Promise<void> {
  const { content, publishOptions } = redeliveryCopy(msg, { attempt: 1, routingKey: eventRoutingKey(msg) });
  // Through the default exchange, straight to this consumer's queue: the other consumers of
  // the event had it already.
  await new Promise<void>((resolve, reject) =>
    channel.sendToQueue(queue, content, publishOptions, (nack: unknown) =>
      nack ? reject(new Error(`the broker did not take the message into ${queue}`)) : resolve(),
    ),
  );
  channel.ack(msg);
}

function describe(msg: GetMessage): ReplayedMessage {
  // The newest death comes first: a message that came back from a retry queue expired out of it before.
  const deaths = msg.properties.headers?.["x-death"];
  const reason = Array.isArray(deaths) ? (deaths[0] as { reason?: unknown } | undefined)?.reason : undefined;
  return {
    messageId: msg.properties.messageId as string | undefined,
    routingKey: eventRoutingKey(msg),
    attempts: attemptOf(msg),
    deathReason: typeof reason === "string" ? reason : undefined,
  };
}
