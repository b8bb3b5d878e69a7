import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import { context } from "@opentelemetry/api";
import type { PgDatabase, PgQueryResultHKT } from "drizzle-orm/pg-core";
import { type Delivery, type EventHandler, on } from "./broker.ts";
import type { EventType } from "./events.ts";
import { inbox } from "./tables.ts";

type Db = PgDatabase<PgQueryResultHKT, Record<string, unknown>>;
type TxOf<T extends Db> = Parameters<Parameters<T["transaction"]>[0]>[0];

/**
 * Runs a consumer's effect at most once per message: the inbox row (consumer, message id) and
 * the effect commit in one transaction, so a redelivered or duplicated message finds the row
 * and does nothing ("duplicate"), and an effect that fails leaves no row behind for the retry.
 */
export async function handleOnce<T extends Db>(
  db: T,
  consumer: string,
  messageId: string,
  effect: (tx: TxOf<T>) => Promise<void>,
  // biome-ignore lint/suspicious/noConfusingVoidType: the effect ran (nothing to report) or the message was a duplicate.
): Promise<void | "duplicate"> {
  return db.transaction(async (tx) => {
    const inserted = await tx.insert(inbox).values({ consumer, messageId }).onConflictDoNothing().returning({ id: inbox.messageId });
    if (inserted.length === 0) return "duplicate";
    await effect(tx as never);
  });
}

/** A message waiting in an {@link Inbox} for the transaction of its batch. */
interface Pending<Tx> {
  messageId: string;
  effect: (tx: Tx) => Promise<void>;
  /** The message's trace context, so its effect's queries join its span. */
  context: ReturnType<typeof context.active>;
  // biome-ignore lint/suspicious/noConfusingVoidType: as handleOnce.
  settle: (result: Promise<void | "duplicate">) => void;
}

/**
 * A consumer's inbox that takes the messages in flight together: what its handlers are given
 * while one transaction runs (up to the queue's prefetch) is handled in the next, with one
 * inbox insert for all and each new message's effect, instead of a transaction per message.
 * Same guarantee as {@link handleOnce}: the inbox rows and the effects commit together, each
 * message is acknowledged only after, and a duplicate does nothing. If any effect of a batch
 * fails, the batch rolls back and each of its messages runs again alone through
 * {@link handleOnce}, so one bad message is retried or dead-lettered on its own and the others
 * commit.
 */
export class Inbox<T extends Db> {
  private pending: Pending<TxOf<T>>[] = [];
  private flushing = false;

  constructor(
    private readonly db: T,
    /** The consumer's name in the inbox table: its queue. */
    private readonly consumer: string,
    /** Messages one transaction takes at most. */
    private readonly maxBatch = 100,
  ) {}

  /** A handler of `event` whose effect runs once per message, in its batch's transaction. */
  on<S extends DescMessage>(event: EventType<S>, effect: (tx: TxOf<T>, message: MessageShape<S>, delivery: Delivery) => Promise<void>): EventHandler {
    return on(event, (message, delivery) => this.handle(delivery.messageId, (tx) => effect(tx, message, delivery)));
  }

  // biome-ignore lint/suspicious/noConfusingVoidType: as handleOnce.
  private handle(messageId: string, effect: (tx: TxOf<T>) => Promise<void>): Promise<void | "duplicate"> {
    return new Promise((resolve, reject) => {
      this.pending.push({ messageId, effect, context: context.active(), settle: (result) => result.then(resolve, reject) });
      // The deliveries of one socket read arrive in one go: gather them before the first flush.
      if (!this.flushing && this.pending.length === 1) setImmediate(() => void this.flush());
    });
  }

  private async flush(): Promise<void> {
    if (this.flushing) return;
    this.flushing = true;
    try {
      while (this.pending.length) {
        const batch = this.pending.splice(0, this.maxBatch);
        let results: ("done" | "duplicate")[];
        try {
          results = await this.runBatch(batch);
        } catch {
          // Which message failed, and how, is for each alone to find out (and retry or dead-letter).
          for (const p of batch) p.settle(context.with(p.context, () => handleOnce(this.db, this.consumer, p.messageId, p.effect)));
          continue;
        }
        for (const [i, p] of batch.entries()) p.settle(Promise.resolve(results[i] === "duplicate" ? "duplicate" : undefined));
      }
    } finally {
      this.flushing = false;
    }
  }

  private runBatch(batch: readonly Pending<TxOf<T>>[]): Promise<("done" | "duplicate")[]> {
    return this.db.transaction(async (tx) => {
      const inserted = await tx
        .insert(inbox)
        .values(batch.map((p) => ({ consumer: this.consumer, messageId: p.messageId })))
        .onConflictDoNothing()
        .returning({ id: inbox.messageId });
      // A set, used up as it goes: the same message twice in one batch has its effect once.
      const fresh = new Set(inserted.map((r) => r.id));
      const results: ("done" | "duplicate")[] = [];
      for (const p of batch) {
        if (!fresh.delete(p.messageId)) {
          results.push("duplicate");
          continue;
        }
        await context.with(p.context, () => p.effect(tx as never));
        results.push("done");
      }
      return results;
    });
  }
}
