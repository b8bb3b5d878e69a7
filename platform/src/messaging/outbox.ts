import { create, type DescMessage, type MessageInitShape, toBinary } from "@bufbuild/protobuf";
import { and, asc, count, eq, inArray, isNull, min, sql } from "drizzle-orm";
import type { PgDatabase, PgQueryResultHKT } from "drizzle-orm/pg-core";
import { log } from "../log.ts";
import { outboxLag, outboxPending } from "../metrics.ts";
import { injectContext } from "../telemetry.ts";
import type { Broker } from "./broker.ts";
import type { EventType } from "./events.ts";
import { outbox } from "./tables.ts";

// Any drizzle Postgres database or transaction.
type Db = PgDatabase<PgQueryResultHKT, Record<string, unknown>>;

/**
 * Writes an event to the outbox inside the caller's transaction, so the event exists if and
 * only if the change that caused it commits. The active trace context is stored with it, so
 * the consumer's work joins the trace of the request that made the change.
 */
export async function enqueueEvent<S extends DescMessage>(tx: Db, event: EventType<S>, init: MessageInitShape<S>): Promise<string> {
  const headers: Record<string, string> = {};
  injectContext(headers);
  const [row] = await tx
    .insert(outbox)
    .values({ routingKey: event.routingKey, payload: toBinary(event.schema, create(event.schema, init)), headers })
    .returning({ id: outbox.id });
  if (!row) throw new Error("the outbox insert returned no row");
  return row.id;
}

/**
 * Tells whoever publishes the outbox that there is something to publish: what a store takes
 * to wake the relay after a commit that enqueued events (the relay's sweep finds them anyway).
 */
export interface OutboxSignal {
  wake(): void;
}

/** Options of {@link OutboxRelay}. */
export interface OutboxRelayOptions {
  /** How often the sweeper looks for rows left unpublished, in milliseconds. */
  pollMs?: number;
  /** Rows claimed and published per batch. */
  batchSize?: number;
}

/**
 * Publishes the outbox. A batch is claimed with `FOR UPDATE SKIP LOCKED` (replicas share the
 * work without sending a row twice at once), published with confirms, and each row is marked
 * published only once the broker acknowledged it. `wake()` after a commit publishes at once;
 * the periodic sweep re-sends whatever was left behind (a crash between commit and publish,
 * a lost connection, a nack).
 */
export class OutboxRelay implements OutboxSignal {
  private timer: ReturnType<typeof setInterval> | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;
  private readonly batchSize: number;
  private readonly pollMs: number;

  constructor(
    private readonly db: Db,
    private readonly broker: Broker,
    options: OutboxRelayOptions = {},
  ) {
    this.batchSize = options.batchSize ?? 200;
    this.pollMs = options.pollMs ?? 1_000;
  }

  /**
   * Starts the periodic sweep and publishes what is waiting, and again as soon as a lost
   * connection is back: the backlog of an outage drains at once, at full speed (batch after
   * batch), not at the next sweep.
   */
  start(): this {
    this.timer = setInterval(() => this.wake(), this.pollMs);
    this.broker.onConnected(() => this.wake());
    this.wake();
    return this;
  }

  /** Publishes now (coalescing with a run already going). */
  wake(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.drain()
      .then(() => undefined)
      .catch((err: unknown) => log.warn("outbox relay run failed; the sweeper will retry", { err: (err as Error).message }))
      .finally(() => {
        this.running = undefined;
        if (this.again) {
          this.again = false;
          this.wake();
        }
      });
  }

  /** Publishes until the outbox is empty (or the broker is unreachable). Returns rows published. */
  async drain(): Promise<number> {
    let total = 0;
    while (!this.stopped && this.broker.connected) {
      const published = await this.publishBatch();
      total += published.claimed;
      if (published.claimed < this.batchSize || published.acked === 0) break;
    }
    await this.measureLag();
    return total;
  }

  private async publishBatch(): Promise<{ claimed: number; acked: number }> {
    return this.db.transaction(async (tx) => {
      const rows = await tx
        .select()
        .from(outbox)
        .where(isNull(outbox.publishedAt))
        .orderBy(asc(outbox.createdAt))
        .limit(this.batchSize)
        .for("update", { skipLocked: true });
      if (rows.length === 0) return { claimed: 0, acked: 0 };
      const { acked, failed } = await this.broker.publish(rows);
      if (acked.length) await tx.update(outbox).set({ publishedAt: sql`now()` }).where(inArray(outbox.id, acked));
      for (const f of failed) {
        await tx
          .update(outbox)
          .set({ attempts: sql`${outbox.attempts} + 1`, lastError: f.error.slice(0, 500) })
          .where(and(eq(outbox.id, f.id), isNull(outbox.publishedAt)));
      }
      if (failed.length) log.warn("the broker did not confirm some messages; they stay in the outbox", { failed: failed.length });
      return { claimed: rows.length, acked: acked.length };
    });
  }

  private async measureLag(): Promise<void> {
    const [row] = await this.db
      .select({ n: count(), oldest: min(outbox.createdAt) })
      .from(outbox)
      .where(isNull(outbox.publishedAt));
    outboxPending.set(row?.n ?? 0);
    outboxLag.set(row?.oldest ? Math.max(0, (Date.now() - new Date(row.oldest).getTime()) / 1000) : 0);
  }

  /** Stops the sweeper and waits for a run in progress. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.running;
  }
}
