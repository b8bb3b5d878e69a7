import { createHash } from "node:crypto";
import { and, asc, desc, eq, inArray, sql, type SQL } from "drizzle-orm";
import { status } from "@grpc/grpc-js";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import { postgresError } from "@bazaar/platform/db";
import { FailedPreconditionError, InvalidArgumentError, NotFoundError, RpcError } from "@bazaar/platform/errors";
import { events } from "@bazaar/platform/messaging/events";
import { enqueueEvent, type OutboxSignal } from "@bazaar/platform/messaging/outbox";
import { formatMoney } from "@bazaar/platform/money";
import { injectContext } from "@bazaar/platform/telemetry";
import type { CheckedMoney } from "@bazaar/platform/validation";
import { type OrderItemRow, orderItems, type OrderRow, orders, sagas } from "./db/schema.ts";
import { ordersPlaced } from "./metrics.ts";
import type { OrdersDatabase, SagaExecutor } from "./saga.ts";
import { isTransient, type SagaPorts } from "./saga-ports.ts";

/** An order with its lines, in the order they were placed. */
export interface OrderWithItems extends OrderRow {
  items: OrderItemRow[];
}

/** A validated PlaceOrder request. */
export interface PlaceOrderInput {
  idempotencyKey: string;
  lines: { productId: string; quantity: number }[];
  /** The shopper's payment method token (payments' CreatePaymentMethod); checked by payments when charged. */
  paymentMethodToken: string;
  /** The total the shopper was shown; the order is refused if the catalog's total is another. */
  expectedTotal?: CheckedMoney | undefined;
}

/** Who is asking: a user, who sees their own orders, or an admin, who sees everyone's. */
export interface Caller {
  userId: string;
  admin: boolean;
}

/**
 * Where a page of ListOrders ended: the (created_at, id) of its last order. Keyset paging
 * means a page never repeats or skips an order, even while new orders arrive.
 */
export interface OrderCursor {
  createdAt: Date;
  id: string;
}

/**
 * Refuses an order whose total is not the one the shopper was shown: a price changed since
 * they looked (or the cart did). FAILED_PRECONDITION with a "PRICE" precondition, before any
 * order exists or money moves.
 */
function requireTotalAsShown(shown: CheckedMoney, now: CheckedMoney): void {
  if (shown.currencyCode === now.currencyCode && shown.amountMinor === now.amountMinor) return;
  const description = `the total is now ${formatMoney(now)}, not the ${formatMoney(shown)} you were shown`;
  throw new FailedPreconditionError(`Prices changed since you looked: ${description}. Nothing was charged; review your cart and check out again.`, [
    { type: "PRICE", subject: "expected_total", description },
  ]);
}

/** Options of {@link OrderStore}. */
export interface OrderStoreOptions {
  /** How long PlaceOrder and CancelOrder wait for a final state before answering with PENDING. */
  waitMs: number;
}

/**
 * Orders: placing one (priced by the catalog, idempotent per user and key) and starting its
 * saga, reading and listing them, and asking for a cancellation.
 */
export class OrderStore {
  constructor(
    private readonly database: OrdersDatabase,
    private readonly ports: Pick<SagaPorts, "priceLines">,
    private readonly executor: SagaExecutor,
    private readonly outbox: OutboxSignal,
    private readonly options: OrderStoreOptions,
  ) {}

  /**
   * What a PlaceOrder request is, for telling a retry (same hash) from a different order under
   * the same key: its lines. Not its payment method token: a retried checkout tokenizes the card
   * anew, so the same key and lines with another token is the same checkout, answered with the
   * order placed first (its token is the one charged; the new one is left to expire).
   */
  requestHash(input: Pick<PlaceOrderInput, "lines">): string {
    const lines = input.lines.map((l) => [l.productId, l.quantity] as const).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return createHash("sha256")
      .update(JSON.stringify({ v: 2, lines }))
      .digest("hex");
  }

  /**
   * Places an order and runs its saga, answering once the order is final or after the wait,
   * whichever is first. The same user and key with the same request gives back the order
   * placed first (no second saga); with a different request it is FAILED_PRECONDITION.
   */
  async place(userId: string, input: PlaceOrderInput, maxWaitMs = this.options.waitMs): Promise<OrderWithItems> {
    const hash = this.requestHash(input);
    const existing = await this.findByKey(userId, input.idempotencyKey);
    if (existing) return this.answerRetry(existing, hash, maxWaitMs);

    const priced = await this.price(input.lines);
    const currency = priced[0]!.currency;
    const totalMinor = input.lines.reduce((sum, l, i) => sum + priced[i]!.unitPriceMinor * l.quantity, 0);
    if (input.expectedTotal) requireTotalAsShown(input.expectedTotal, { currencyCode: currency, amountMinor: totalMinor });
    // The saga is this executor's from the moment it exists (unless it is shutting down).
    const claim = this.executor.claimNew();
    // The id is made here, not by the database, so that the order, its lines and its saga are
    // one statement (data-modifying CTEs; the foreign keys are checked at its end).
    const orderId = crypto.randomUUID();
    const items: OrderItemRow[] = input.lines.map((l, i) => ({
      orderId,
      lineNo: i,
      productId: l.productId,
      name: priced[i]!.name,
      unitPriceMinor: priced[i]!.unitPriceMinor,
      quantity: l.quantity,
    }));
    const saga = { orderId, step: "reserve", attempts: claim?.attempts ?? 0, cancelRequested: false, paymentMethodToken: input.paymentMethodToken } as const;
    // Stored with the saga (in the same insert), so that a saga resumed later continues this trace.
    const traceContext: Record<string, string> = {};
    injectContext(traceContext);
    let placed: OrderRow;
    try {
      placed = await this.database.db.transaction(async (tx) => {
        const lines = tx.$with("lines").as(tx.insert(orderItems).values(items).returning({ orderId: orderItems.orderId }));
        const started = tx.$with("started").as(
          tx
            .insert(sagas)
            .values({ ...saga, ...claim, traceContext })
            .returning({ orderId: sagas.orderId }),
        );
        const [order] = await tx
          .with(lines, started)
          .insert(orders)
          .values({ id: orderId, userId, currency, totalMinor, idempotencyKey: input.idempotencyKey, requestHash: hash })
          .returning();
        if (!order) throw new Error("the order insert returned no row");
        await enqueueEvent(tx, events.orderPlaced, {
          orderId,
          userId,
          total: { currencyCode: currency, amountMinor: BigInt(totalMinor) },
          lines: items.map((i) => ({ productId: i.productId, name: i.name, quantity: i.quantity })),
          occurTime: timestampNow(),
        });
        return order;
      });
    } catch (err) {
      // The same key at the same moment (a double click): the other request placed the order.
      const pg = postgresError(err);
      if (pg?.code !== "23505" || pg.constraint !== "orders_user_id_idempotency_key_unique") throw err;
      const winner = await this.findByKey(userId, input.idempotencyKey);
      if (!winner) throw err;
      return this.answerRetry(winner, hash, maxWaitMs);
    }
    ordersPlaced.inc();
    this.outbox.wake();
    // This executor drives the saga from what it just inserted, and the order it finalizes is
    // the answer: nothing is read back unless the saga outlasts the wait (or is not ours).
    const driving = claim ? this.executor.runClaimed({ ...saga, cancelReason: null, cancelCode: null }, { ...placed, items }, claim.leaseOwner) : undefined;
    const final = await this.executor.waitForFinal(orderId, maxWaitMs, driving);
    return final ? { ...final, items } : this.load(orderId);
  }

  private async answerRetry(existing: OrderRow, hash: string, maxWaitMs: number): Promise<OrderWithItems> {
    if (existing.requestHash !== hash) {
      throw new FailedPreconditionError("idempotency_key: was used before for a different order (other lines); use a new key for a new checkout");
    }
    await this.executor.waitForFinal(existing.id, maxWaitMs);
    return this.load(existing.id);
  }

  /** Names and prices from the catalog, one per line, in one call. */
  private async price(lines: PlaceOrderInput["lines"]) {
    const answer = await this.ports.priceLines(lines.map((l) => l.productId)).catch((err: unknown) => {
      // The client tried every catalog replica already; another orders replica would do the same.
      if (isTransient(err)) throw new RpcError(status.UNAVAILABLE, "the catalog could not be reached to price the order; try again", { doNotRetry: true });
      throw err;
    });
    const priced = lines.map((l, i) => {
      const product = answer.found.get(l.productId);
      if (!product) throw new InvalidArgumentError(`no product has id ${l.productId}`, `lines[${i}].product_id`);
      return product;
    });
    const currencies = new Set(priced.map((p) => p.currency));
    if (currencies.size > 1)
      throw new InvalidArgumentError(`the products are priced in different currencies (${[...currencies].join(", ")}); order them separately`, "lines");
    return priced;
  }

  private async findByKey(userId: string, key: string): Promise<OrderRow | undefined> {
    const [row] = await this.database.db
      .select()
      .from(orders)
      .where(and(eq(orders.userId, userId), eq(orders.idempotencyKey, key)));
    return row;
  }

  /** An order the caller may see: their own, or anyone's for an admin; otherwise NOT_FOUND. */
  async get(caller: Caller, id: string): Promise<OrderWithItems> {
    const [order] = await this.database.db.select().from(orders).where(eq(orders.id, id));
    if (!order || (order.userId !== caller.userId && !caller.admin)) throw new NotFoundError(`you have no order with id ${id}`);
    return this.withItems([order]).then((o) => o[0]!);
  }

  /** A page of the caller's orders (an admin's: everyone's), newest first, after `cursor`. */
  async list(caller: Caller, pageSize: number, cursor?: OrderCursor): Promise<{ orders: OrderWithItems[]; next?: OrderCursor }> {
    const conditions: SQL[] = [];
    if (!caller.admin) conditions.push(eq(orders.userId, caller.userId));
    if (cursor) conditions.push(sql`(${orders.createdAt}, ${orders.id}) < (${cursor.createdAt.toISOString()}::timestamptz, ${cursor.id}::uuid)`);
    const rows = await this.database.db
      .select()
      .from(orders)
      .where(and(...conditions))
      .orderBy(desc(orders.createdAt), desc(orders.id))
      .limit(pageSize + 1);
    const page = rows.slice(0, pageSize);
    const last = page.at(-1);
    return {
      orders: await this.withItems(page),
      next: rows.length > pageSize && last ? { createdAt: last.createdAt, id: last.id } : undefined,
    };
  }

  /**
   * Asks for one of the caller's pending orders to be cancelled: the saga compensates before
   * its next forward step. Answers once the order is final or after the wait. A final order
   * is FAILED_PRECONDITION.
   */
  async cancel(caller: Caller, id: string, maxWaitMs = this.options.waitMs): Promise<OrderWithItems> {
    await this.database.db.transaction(async (tx) => {
      // The saga's lock first: the executor finalizes orders under it, so the status read next is current.
      const [saga] = await tx.select().from(sagas).where(eq(sagas.orderId, id)).for("update");
      const [order] = await tx.select().from(orders).where(eq(orders.id, id));
      if (!order || !saga || order.userId !== caller.userId) throw new NotFoundError(`you have no order with id ${id}`);
      if (order.status !== "PENDING") {
        throw new FailedPreconditionError(`order ${id} is already ${order.status.toLowerCase()}; only a pending order can be cancelled`);
      }
      await tx
        .update(sagas)
        // A saga waiting to retry is looked at now: a cancellation may spare it the retry.
        .set({ cancelRequested: true, nextAttemptAt: sql`least(${sagas.nextAttemptAt}, now())`, updatedAt: sql`now()` })
        .where(eq(sagas.orderId, id));
    });
    void this.executor.runNow(id);
    await this.executor.waitForFinal(id, maxWaitMs);
    return this.load(id);
  }

  private async load(id: string): Promise<OrderWithItems> {
    const [order] = await this.database.db.select().from(orders).where(eq(orders.id, id));
    if (!order) throw new NotFoundError(`no order has id ${id}`);
    return this.withItems([order]).then((o) => o[0]!);
  }

  private async withItems(rows: OrderRow[]): Promise<OrderWithItems[]> {
    if (rows.length === 0) return [];
    const items = await this.database.db
      .select()
      .from(orderItems)
      .where(
        inArray(
          orderItems.orderId,
          rows.map((r) => r.id),
        ),
      )
      .orderBy(asc(orderItems.orderId), asc(orderItems.lineNo));
    return rows.map((r) => ({ ...r, items: items.filter((i) => i.orderId === r.id) }));
  }
}
