import { context, ROOT_CONTEXT } from "@opentelemetry/api";
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
  /**
   * How long a wake waits before it drains, in milliseconds, so the events of the commits of
   * that moment go out as one batch (one claim, one pipelined publish, one mark) instead of a
   * transaction each.
   */
  debounceMs?: number;
}

/**
 * Publishes the outbox. A batch is claimed with `FOR UPDATE SKIP LOCKED` (replicas share the
 * work without sending a row twice at once), published with confirms, and each row is marked
 * published only once the broker acknowledged it, all in one transaction: a crash before it
 * commits leaves the rows unpublished, to be sent again (at-least-once; consumers dedupe by
 * message id). `wake()` after a commit publishes within {@link OutboxRelayOptions.debounceMs},
 * together with whatever else was committed meanwhile; the periodic sweep re-sends whatever was
 * left behind (a crash between commit and publish, a lost connection, a nack). Rows go out in
 * the order they were created within a batch; across replicas and retries there is no order.
 */
export class OutboxRelay implements OutboxSignal {
  private timer: ReturnType<typeof setInterval> | undefined;
  private scheduled: ReturnType<typeof setTimeout> | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;
  private readonly batchSize: number;
  private readonly pollMs: number;
  private readonly debounceMs: number;

  constructor(
    private readonly db: Db,
    private readonly broker: Broker,
    options: OutboxRelayOptions = {},
  ) {
    this.batchSize = options.batchSize ?? 200;
    this.pollMs = options.pollMs ?? 1_000;
    // A few milliseconds: little next to a consumer's own latency, and under load enough for the
    // events of several commits to share one transaction and one confirm round trip.
    this.debounceMs = options.debounceMs ?? 5;
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

  /** Publishes soon: after the debounce, or after the run already going (coalescing with either). */
  wake(): void {
    if (this.stopped || this.scheduled) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.scheduled = setTimeout(() => this.run(), this.debounceMs);
  }

  private run(): void {
    this.scheduled = undefined;
    if (this.stopped) return;
    // A batch carries the events of many requests: its claim and mark are a trace of their own,
    // not one of the request that happened to wake it. Each publish joins its row's trace.
    this.running = context
      .with(ROOT_CONTEXT, () => this.drain())
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

  /**
   * Publishes until the outbox is empty (or the broker is unreachable). Returns rows claimed.
   * The pending and lag gauges come from what the batches saw; only a drain that stopped short
   * of an empty outbox (no connection, nothing acknowledged) counts the rows left.
   */
  async drain(): Promise<number> {
    let total = 0;
    let last: Batch | undefined;
    while (!this.stopped && this.broker.connected) {
      last = await this.publishBatch();
      total += last.claimed;
      if (last.oldest) outboxLag.set(ageSeconds(last.oldest));
      if (last.claimed < this.batchSize || last.acked === 0) break;
    }
    if (last && last.claimed < this.batchSize) {
      // The claim saw every unpublished row (but those another replica held): what is left is
      // what the broker did not confirm, and rows committed since, which their wake publishes.
      outboxPending.set(last.unconfirmed.length);
      outboxLag.set(last.unconfirmed.length ? ageSeconds(last.unconfirmed[0]!) : 0);
    } else await this.measureLag();
    return total;
  }

  private async publishBatch(): Promise<Batch> {
    return this.db.transaction(async (tx) => {
      const rows = await tx
        .select()
        .from(outbox)
        .where(isNull(outbox.publishedAt))
        .orderBy(asc(outbox.createdAt))
        .limit(this.batchSize)
        .for("update", { skipLocked: true });
      if (rows.length === 0) return { claimed: 0, acked: 0, oldest: undefined, unconfirmed: [] };
      const { acked, failed } = await this.broker.publish(rows);
      if (acked.length) await tx.update(outbox).set({ publishedAt: sql`now()` }).where(inArray(outbox.id, acked));
      for (const f of failed) {
        await tx
          .update(outbox)
          .set({ attempts: sql`${outbox.attempts} + 1`, lastError: f.error.slice(0, 500) })
          .where(and(eq(outbox.id, f.id), isNull(outbox.publishedAt)));
      }
      if (failed.length) log.warn("the broker did not confirm some messages; they stay in the outbox", { failed: failed.length });
      const failedIds = new Set(failed.map((f) => f.id));
      return {
        claimed: rows.length,
        acked: acked.length,
        oldest: rows[0]?.createdAt,
        unconfirmed: rows.filter((r) => failedIds.has(r.id)).map((r) => r.createdAt),
      };
    });
  }

  private async measureLag(): Promise<void> {
    const [row] = await this.db
      .select({ n: count(), oldest: min(outbox.createdAt) })
      .from(outbox)
      .where(isNull(outbox.publishedAt));
    outboxPending.set(row?.n ?? 0);
    outboxLag.set(row?.oldest ? ageSeconds(row.oldest) : 0);
  }

  /** Stops the sweeper and waits for a run in progress. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    if (this.scheduled) clearTimeout(this.scheduled);
    await this.running;
  }
}

/** What one claim saw: rows claimed and acknowledged, the oldest row's time, and when each unconfirmed row was created (oldest first). */
interface Batch {
  claimed: number;
  acked: number;
  oldest: Date | undefined;
  unconfirmed: Date[];
}

function ageSeconds(createdAt: Date | string): number {
  return Math.max(0, (Date.now() - new Date(createdAt).getTime()) / 1000);
}
