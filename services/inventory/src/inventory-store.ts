import { and, asc, eq, inArray, lte, sql } from "drizzle-orm";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import { type Database, postgresError } from "@bazaar/platform/db";
import { AbortedError, FailedPreconditionError, NotFoundError } from "@bazaar/platform/errors";
import { events } from "@bazaar/platform/messaging/events";
import { enqueueEvent, type OutboxSignal } from "@bazaar/platform/messaging/outbox";
import type * as schema from "./db/schema.ts";
import { type ReservationStatus, reservationItems, reservations, stock, stockAdjustments, type StockRow } from "./db/schema.ts";
import { demoQuantity } from "./demo-stock.ts";
import { reservationOutcomes } from "./metrics.ts";

/** The inventory's database. */
export type InventoryDatabase = Database<typeof schema>;
/** A transaction on it. */
export type InventoryTx = Parameters<Parameters<InventoryDatabase["db"]["transaction"]>[0]>[0];

/** The stock of one product. */
export interface StockLevel {
  productId: string;
  onHand: number;
  reserved: number;
  /** on_hand - reserved: what can be bought now. */
  available: number;
  /** One more with every change (0: the product has no stock row); readers keep the highest they saw. */
  version: bigint;
}

/** A quantity of one product. */
export interface Line {
  productId: string;
  quantity: number;
}

/** Stock held for one order. */
export interface Reservation {
  orderId: string;
  /** Ordered by product id. */
  items: Line[];
  status: ReservationStatus;
  expiresAt: Date;
}

/** Options of {@link InventoryStore}. */
export interface InventoryOptions {
  /** Seconds a new reservation holds its stock before the sweeper gives it back. */
  reservationTtlSeconds: number;
  /** New products get {@link demoQuantity} units instead of none. */
  demoStock?: boolean;
}

const byProduct = (a: { productId: string }, b: { productId: string }) => (a.productId < b.productId ? -1 : a.productId > b.productId ? 1 : 0);

/** A stock row as a level. */
export function toLevel(row: Pick<StockRow, "productId" | "onHand" | "reserved" | "version">): StockLevel {
  return { productId: row.productId, onHand: row.onHand, reserved: row.reserved, available: row.onHand - row.reserved, version: row.version };
}

/**
 * What every update of a stock row sets besides its levels: the row's next version (the row is
 * locked by the update, so versions of one product never repeat) and the time.
 */
const changeStamp = { version: sql`${stock.version} + 1`, updatedAt: sql`now()` };

/** Queues one StockChanged event per changed row, in the caller's transaction. */
async function stockChanged(tx: InventoryTx, rows: readonly StockRow[]): Promise<void> {
  for (const row of rows) {
    await enqueueEvent(tx, events.stockChanged, { ...toLevel(row), occurTime: timestampNow() });
  }
}

/**
 * Stock and reservations. Every change runs in one transaction with its StockChanged events.
 *
 * Overselling is impossible by construction: a line is reserved by a conditional update
 * (`reserved = reserved + q WHERE on_hand - reserved >= q`), which Postgres re-checks against
 * the latest committed row when it had to wait for a concurrent writer, and the table's check
 * constraint backs it up. Deadlocks are avoided by one lock order everywhere: the reservation
 * row first, then stock rows in product id order.
 */
export class InventoryStore {
  private readonly ttlSeconds: number;
  private readonly demoStock: boolean;

  constructor(
    private readonly database: InventoryDatabase,
    options: InventoryOptions,
    private readonly outbox: OutboxSignal = { wake() {} },
  ) {
    this.ttlSeconds = options.reservationTtlSeconds;
    this.demoStock = options.demoStock ?? false;
  }

  /** Stock levels in the order asked for; a product without a stock row has none (zeros). */
  async levels(productIds: readonly string[]): Promise<StockLevel[]> {
    const unique = [...new Set(productIds)];
    const rows = await this.database.db.select().from(stock).where(inArray(stock.productId, unique));
    const byId = new Map(rows.map((r) => [r.productId, r]));
    return productIds.map((id) => toLevel(byId.get(id) ?? { productId: id, onHand: 0, reserved: 0, version: 0n }));
  }

  /**
   * Holds stock for an order: every line or none. Asking again for the same order with the
   * same lines returns the reservation there is, whatever its status; other lines are refused.
   */
  async reserve(orderId: string, lines: readonly Line[]): Promise<Reservation> {
    const sorted = [...lines].sort(byProduct);
    const { reservation, created } = await this.database.db.transaction(async (tx) => {
      // Claims the order id. A concurrent ReserveStock for the same order waits here until
      // this transaction ends, then finds the reservation (or, if this one failed, none).
      const [claimed] = await tx
        .insert(reservations)
        .values({ orderId, status: "RESERVED", expiresAt: sql`now() + make_interval(secs => ${this.ttlSeconds})` })
        .onConflictDoNothing()
        .returning();
      if (!claimed) {
        const existing = await this.load(tx, orderId);
        // Reservations are never deleted, so this only happens if one vanished under us.
        if (!existing) throw new AbortedError(`the reservation of order ${orderId} changed during the call; try again`);
        if (!sameLines(existing.items, sorted)) throw new FailedPreconditionError(`order ${orderId} already has a different reservation`);
        return { reservation: existing, created: false };
      }
      const changed: StockRow[] = [];
      for (const line of sorted) {
        const [row] = await tx
          .update(stock)
          .set({ reserved: sql`${stock.reserved} + ${line.quantity}`, ...changeStamp })
          .where(and(eq(stock.productId, line.productId), sql`${stock.onHand} - ${stock.reserved} >= ${line.quantity}`))
          .returning();
        if (!row) {
          // Throwing rolls back the lines reserved so far and the claim on the order id.
          const [current] = await tx.select().from(stock).where(eq(stock.productId, line.productId));
          const available = current ? current.onHand - current.reserved : 0;
          reservationOutcomes.inc({ outcome: "out_of_stock" });
          const shortage = `not enough stock of ${line.productId}: ${Math.max(0, available)} available, ${line.quantity} asked`;
          // The "STOCK" violation is ReserveStock's contract (inventory.proto): callers read the product from it.
          throw new FailedPreconditionError(shortage, [{ type: "STOCK", subject: line.productId, description: shortage }]);
        }
        changed.push(row);
      }
      await tx.insert(reservationItems).values(sorted.map((l) => ({ orderId, productId: l.productId, quantity: l.quantity })));
      await stockChanged(tx, changed);
      return { reservation: { orderId, items: sorted, status: claimed.status, expiresAt: claimed.expiresAt }, created: true };
    });
    if (created) {
      this.outbox.wake();
      reservationOutcomes.inc({ outcome: "reserved" });
    }
    return reservation;
  }

  /**
   * Turns a reservation into a sale: its units leave on hand and reserved. Committing again
   * returns the same; a released or expired reservation cannot be committed. A reservation
   * past its expiry that the sweeper has not reached yet still holds its stock, so it commits.
   */
  async commit(orderId: string): Promise<Reservation> {
    return this.settle(orderId, "COMMITTED");
  }

  /**
   * Gives a reservation's units back. Releasing again (or an expired one) returns it as it
   * is; an order without a reservation gets undefined; a committed one cannot be released.
   */
  async release(orderId: string): Promise<Reservation | undefined> {
    return this.settle(orderId, "RELEASED").catch((err: unknown) => {
      if (err instanceof NotFoundError) return undefined;
      throw err;
    });
  }

  private async settle(orderId: string, to: "COMMITTED" | "RELEASED"): Promise<Reservation> {
    const { reservation, changed } = await this.database.db.transaction(async (tx) => {
      const [row] = await tx.select().from(reservations).where(eq(reservations.orderId, orderId)).for("update");
      if (!row) throw new NotFoundError(`order ${orderId} has no reservation`);
      const items = await this.items(tx, orderId);
      const current: Reservation = { orderId, items, status: row.status, expiresAt: row.expiresAt };
      if (row.status === to || (to === "RELEASED" && row.status === "EXPIRED")) return { reservation: current, changed: false };
      if (row.status !== "RESERVED") {
        throw new FailedPreconditionError(
          to === "COMMITTED"
            ? `the reservation of order ${orderId} was ${row.status.toLowerCase()} and holds no stock; reserve again`
            : `the reservation of order ${orderId} was committed: its stock is sold and cannot be released`,
        );
      }
      const rows: StockRow[] = [];
      for (const item of items) {
        const [updated] = await tx
          .update(stock)
          .set({
            reserved: sql`${stock.reserved} - ${item.quantity}`,
            ...(to === "COMMITTED" ? { onHand: sql`${stock.onHand} - ${item.quantity}` } : {}),
            ...changeStamp,
          })
          .where(eq(stock.productId, item.productId))
          .returning();
        if (!updated) throw new Error(`stock row of ${item.productId} missing under reservation ${orderId}`);
        rows.push(updated);
      }
      await tx.update(reservations).set({ status: to, updatedAt: sql`now()` }).where(eq(reservations.orderId, orderId));
      await stockChanged(tx, rows);
      return { reservation: { ...current, status: to }, changed: true };
    });
    if (changed) {
      this.outbox.wake();
      reservationOutcomes.inc({ outcome: to.toLowerCase() });
    }
    return reservation;
  }

  /**
   * Gives back the stock of up to `limit` reservations past their expiry, marking them
   * EXPIRED; returns how many. Rows another transaction holds (a replica's sweeper, a commit
   * in flight) are skipped, so replicas share the work.
   */
  async expireDue(limit = 100): Promise<number> {
    const expired = await this.database.db.transaction(async (tx) => {
      const due = await tx
        .select({ orderId: reservations.orderId })
        .from(reservations)
        .where(and(eq(reservations.status, "RESERVED"), lte(reservations.expiresAt, sql`now()`)))
        .orderBy(asc(reservations.expiresAt))
        .limit(limit)
        .for("update", { skipLocked: true });
      if (due.length === 0) return 0;
      const orderIds = due.map((r) => r.orderId);
      const items = await tx.select().from(reservationItems).where(inArray(reservationItems.orderId, orderIds));
      // One update per product, in product order like every other writer.
      const totals = new Map<string, number>();
      for (const item of items) totals.set(item.productId, (totals.get(item.productId) ?? 0) + item.quantity);
      const rows: StockRow[] = [];
      for (const productId of [...totals.keys()].sort()) {
        const [updated] = await tx
          .update(stock)
          .set({ reserved: sql`${stock.reserved} - ${totals.get(productId)!}`, ...changeStamp })
          .where(eq(stock.productId, productId))
          .returning();
        if (updated) rows.push(updated);
      }
      await tx.update(reservations).set({ status: "EXPIRED", updatedAt: sql`now()` }).where(inArray(reservations.orderId, orderIds));
      await stockChanged(tx, rows);
      return due.length;
    });
    if (expired) {
      this.outbox.wake();
      reservationOutcomes.inc({ outcome: "expired" }, expired);
    }
    return expired;
  }

  /**
   * Changes stock on hand by `delta` and records who did it and why. On hand may not drop
   * below what is reserved (nor, therefore, below zero). A product without a stock row gets
   * one on a positive delta: stock can arrive before the catalog's announcement of it does.
   */
  async adjust(productId: string, delta: number, reason: string, actor: string): Promise<StockLevel> {
    const row = await this.database.db
      .transaction(async (tx) => {
        let updated: StockRow | undefined;
        if (delta > 0) {
          // Only products inventory knows (a row, from the catalog's events or listing) take units.
          [updated] = await tx
            .update(stock)
            .set({ onHand: sql`${stock.onHand} + ${delta}`, ...changeStamp })
            .where(eq(stock.productId, productId))
            .returning();
          if (!updated) throw new NotFoundError(`product ${productId} is not known to inventory`);
        } else {
          [updated] = await tx
            .update(stock)
            .set({ onHand: sql`${stock.onHand} + ${delta}`, ...changeStamp })
            .where(and(eq(stock.productId, productId), sql`${stock.onHand} + ${delta} >= ${stock.reserved}`))
            .returning();
          if (!updated) {
            const [current] = await tx.select().from(stock).where(eq(stock.productId, productId));
            if (!current) throw new NotFoundError(`product ${productId} has no stock to remove`);
            throw new FailedPreconditionError(
              `cannot remove ${-delta} units of ${productId}: ${current.onHand} on hand, ${current.reserved} reserved for orders; at most ${current.onHand - current.reserved} can be removed`,
            );
          }
        }
        if (!updated) throw new Error("the stock update returned no row");
        await tx.insert(stockAdjustments).values({ productId, delta, reason, actor, onHandAfter: updated.onHand });
        await stockChanged(tx, [updated]);
        return updated;
      })
      .catch((err: unknown) => {
        // 22003: on hand would not fit in an integer.
        if (postgresError(err)?.code === "22003") throw new FailedPreconditionError(`${productId} cannot hold that many units`);
        throw err;
      });
    this.outbox.wake();
    return toLevel(row);
  }

  /** Whether the product has a stock row: whether inventory knows it. */
  async hasProduct(productId: string): Promise<boolean> {
    const [row] = await this.database.db.select({ productId: stock.productId }).from(stock).where(eq(stock.productId, productId));
    return row !== undefined;
  }

  /**
   * Creates the stock rows of products that have none, with no units (or demo units), in the
   * caller's transaction; returns the rows created. The caller wakes the outbox after commit.
   */
  async addProducts(tx: InventoryTx, productIds: readonly string[]): Promise<StockRow[]> {
    if (productIds.length === 0) return [];
    const created = await tx
      .insert(stock)
      .values([...new Set(productIds)].sort().map((productId) => ({ productId, onHand: this.demoStock ? demoQuantity(productId) : 0 })))
      .onConflictDoNothing()
      .returning();
    await stockChanged(tx, created);
    return created;
  }

  /** A reservation with its lines, if the order has one. */
  private async load(tx: InventoryTx, orderId: string): Promise<Reservation | undefined> {
    const [row] = await tx.select().from(reservations).where(eq(reservations.orderId, orderId));
    if (!row) return undefined;
    return { orderId, items: await this.items(tx, orderId), status: row.status, expiresAt: row.expiresAt };
  }

  private async items(tx: InventoryTx, orderId: string): Promise<Line[]> {
    return tx
      .select({ productId: reservationItems.productId, quantity: reservationItems.quantity })
      .from(reservationItems)
      .where(eq(reservationItems.orderId, orderId))
      .orderBy(asc(reservationItems.productId));
  }
}

/** Whether two lists of lines, both ordered by product, ask for the same. */
function sameLines(a: readonly Line[], b: readonly Line[]): boolean {
  return a.length === b.length && a.every((l, i) => l.productId === b[i]?.productId && l.quantity === b[i]?.quantity);
}
