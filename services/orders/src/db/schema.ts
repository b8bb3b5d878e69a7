import { sql } from "drizzle-orm";
import { bigint, boolean, check, index, integer, jsonb, pgTable, primaryKey, text, timestamp, unique, uuid } from "drizzle-orm/pg-core";

/** Where an order stands; CONFIRMED and CANCELLED are final. */
export const orderStatuses = ["PENDING", "CONFIRMED", "CANCELLED"] as const;
export type OrderStatusName = (typeof orderStatuses)[number];

/**
 * The next thing a saga does. Forward: reserve → charge → commit; compensation: refund →
 * release; done once the order is final.
 */
export const sagaSteps = ["reserve", "charge", "commit", "refund", "release", "done"] as const;
export type SagaStep = (typeof sagaSteps)[number];

// Millisecond precision: the ListOrders page token carries created_at, and a JS Date holds ms.
const ms = { withTimezone: true, precision: 3 } as const;

/** Orders. Amounts are integers in the currency's minor unit, priced by the catalog. */
export const orders = pgTable(
  "orders",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    /** The buyer: the `sub` of their access token. */
    userId: text("user_id").notNull(),
    status: text("status", { enum: orderStatuses }).notNull().default("PENDING"),
    currency: text("currency").notNull(),
    totalMinor: bigint("total_minor", { mode: "number" }).notNull(),
    /** Why it was cancelled, for the shopper; empty unless CANCELLED. */
    cancelReason: text("cancel_reason").notNull().default(""),
    /** The captured payment, once charged. */
    paymentId: text("payment_id"),
    /** The client's key for this checkout: a retry with the same key finds this order. */
    idempotencyKey: text("idempotency_key").notNull(),
    /** What the order was placed with (its lines), to tell a retry from a different request. */
    requestHash: text("request_hash").notNull(),
    createdAt: timestamp("created_at", ms).notNull().defaultNow(),
    updatedAt: timestamp("updated_at", ms).notNull().defaultNow(),
  },
  (t) => [
    unique("orders_user_id_idempotency_key_unique").on(t.userId, t.idempotencyKey),
    // ListOrders: keyset paging on (created_at, id), newest first (a backward scan), per user and for admins.
    index("orders_user_id_created_at_id_idx").on(t.userId, t.createdAt, t.id),
    index("orders_created_at_id_idx").on(t.createdAt, t.id),
    check("orders_status_known", sql`${t.status} in ('PENDING', 'CONFIRMED', 'CANCELLED')`),
    check("orders_total_minor_non_negative", sql`${t.totalMinor} >= 0`),
    check("orders_cancel_reason_only_when_cancelled", sql`${t.status} = 'CANCELLED' or ${t.cancelReason} = ''`),
  ],
);

/** The lines of an order, priced when it was placed. */
export const orderItems = pgTable(
  "order_items",
  {
    orderId: uuid("order_id")
      .notNull()
      .references(() => orders.id, { onDelete: "cascade" }),
    /** The line's position in the request, so an order reads back as it was placed. */
    lineNo: integer("line_no").notNull(),
    productId: uuid("product_id").notNull(),
    /** The product's name when ordered. */
    name: text("name").notNull(),
    unitPriceMinor: bigint("unit_price_minor", { mode: "number" }).notNull(),
    quantity: integer("quantity").notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.orderId, t.productId] }),
    check("order_items_quantity_range", sql`${t.quantity} between 1 and 99`),
    check("order_items_unit_price_non_negative", sql`${t.unitPriceMinor} >= 0`),
  ],
);

/**
 * The durable state of each order's saga: the next step, retries, and a lease so that only
 * one executor (of any replica) works on a saga at a time. The saga is the only writer of an
 * order's status after it was placed.
 */
export const sagas = pgTable(
  "sagas",
  {
    orderId: uuid("order_id")
      .primaryKey()
      .references(() => orders.id, { onDelete: "cascade" }),
    step: text("step", { enum: sagaSteps }).notNull().default("reserve"),
    /** The shopper's reason once the saga turned to compensating (the first reason wins). */
    cancelReason: text("cancel_reason"),
    /** The same as a short code, for the outcome metric's `reason` label. */
    cancelCode: text("cancel_code"),
    /** CancelOrder was asked: compensate before the next forward step. */
    cancelRequested: boolean("cancel_requested").notNull().default(false),
    /**
     * Claims of the current step. Raised (and committed) before each attempt's remote call,
     * so a step with attempts > 0 may have reached the peer and must be replayed, never skipped.
     */
    attempts: integer("attempts").notNull().default(0),
    nextAttemptAt: timestamp("next_attempt_at", ms).notNull().defaultNow(),
    /** The executor holding the saga holds it until then; after that anyone may take it over. */
    leaseUntil: timestamp("lease_until", ms),
    /** The holder's claim token: a step's outcome is recorded only by the claim that holds the lease (fencing). */
    leaseOwner: text("lease_owner"),
    lastError: text("last_error"),
    /**
     * The shopper's payment method token (payments' CreatePaymentMethod), for the charge step
     * only: orders never sees the card. Single-use and short-lived, and still cleared in the
     * transaction that leaves the charge step (a check enforces it): once charged it is of no
     * use to anyone, and nothing of the payment lingers here.
     */
    paymentMethodToken: text("payment_method_token"),
    /**
     * The W3C trace context of the PlaceOrder that started the saga (traceparent, tracestate),
     * written with the saga's insert: a saga resumed later (a retry, a takeover after a crash)
     * continues the order's trace.
     */
    traceContext: jsonb("trace_context").$type<Record<string, string>>(),
    createdAt: timestamp("created_at", ms).notNull().defaultNow(),
    updatedAt: timestamp("updated_at", ms).notNull().defaultNow(),
  },
  (t) => [
    // The poller's query: sagas not done whose time has come.
    index("sagas_due_idx").on(t.nextAttemptAt).where(sql`step <> 'done'`),
    check("sagas_payment_method_token_only_until_charged", sql`${t.step} in ('reserve', 'charge') or ${t.paymentMethodToken} is null`),
    check("sagas_step_known", sql`${t.step} in ('reserve', 'charge', 'commit', 'refund', 'release', 'done')`),
    check("sagas_attempts_non_negative", sql`${t.attempts} >= 0`),
  ],
);

export type OrderRow = typeof orders.$inferSelect;
export type OrderItemRow = typeof orderItems.$inferSelect;
export type SagaRow = typeof sagas.$inferSelect;

// The transactional outbox: OrderPlaced, OrderConfirmed and OrderCancelled are written with the change.
export { outbox } from "@bazaar/platform/messaging/tables";
