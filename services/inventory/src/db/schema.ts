import { sql } from "drizzle-orm";
import { bigint, check, index, integer, pgTable, primaryKey, text, timestamp, uuid } from "drizzle-orm/pg-core";

/**
 * Stock of one product. `reserved` units are held for orders not yet confirmed; what can be
 * sold is `on_hand - reserved`. The checks are the last line of defence against overselling:
 * the conditional updates in stock.ts never try to break them.
 */
export const stock = pgTable(
  "stock",
  {
    productId: uuid("product_id").primaryKey(),
    onHand: integer("on_hand").notNull().default(0),
    reserved: integer("reserved").notNull().default(0),
    updatedAt: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
    /** One more with every change of the row (every update in inventory-store.ts bumps it): StockLevel.version and StockChanged.version. */
    version: bigint("version", { mode: "bigint" }).notNull().default(sql`1`),
  },
  (t) => [check("stock_levels_valid", sql`${t.reserved} >= 0 AND ${t.onHand} >= ${t.reserved}`)],
);

/** Where a reservation stands. */
export const reservationStatuses = ["RESERVED", "COMMITTED", "RELEASED", "EXPIRED"] as const;
/** One of {@link reservationStatuses}. */
export type ReservationStatus = (typeof reservationStatuses)[number];

/** Stock held for one order; the order id is the idempotency key of ReserveStock. */
export const reservations = pgTable(
  "reservations",
  {
    orderId: uuid("order_id").primaryKey(),
    status: text("status").$type<ReservationStatus>().notNull(),
    /** When a RESERVED reservation is given back by the sweeper. */
    expiresAt: timestamp("expires_at", { withTimezone: true }).notNull(),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    check("reservations_status_known", sql`${t.status} in ('RESERVED', 'COMMITTED', 'RELEASED', 'EXPIRED')`),
    // The sweeper looks only at reservations still holding stock, oldest expiry first.
    index("reservations_expiring_idx").on(t.expiresAt).where(sql`status = 'RESERVED'`),
  ],
);

/** The lines of a reservation: each product once. */
export const reservationItems = pgTable(
  "reservation_items",
  {
    orderId: uuid("order_id")
      .notNull()
      .references(() => reservations.orderId),
    productId: uuid("product_id")
      .notNull()
      .references(() => stock.productId),
    quantity: integer("quantity").notNull(),
  },
  (t) => [primaryKey({ columns: [t.orderId, t.productId] }), check("reservation_items_quantity_positive", sql`${t.quantity} > 0`)],
);

/** The audit log of AdjustStock: who changed stock on hand, by how much and why. */
export const stockAdjustments = pgTable(
  "stock_adjustments",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    productId: uuid("product_id").notNull(),
    delta: integer("delta").notNull(),
    reason: text("reason").notNull(),
    /** The subject of the caller's access token. */
    actor: text("actor").notNull(),
    /** Units on hand right after the change. */
    onHandAfter: integer("on_hand_after").notNull(),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [index("stock_adjustments_product_idx").on(t.productId, t.createdAt)],
);

/** A stock row. */
export type StockRow = typeof stock.$inferSelect;

// StockChanged events are written with the change (outbox); product announcements are
// handled once each (inbox).
export { inbox, outbox } from "@bazaar/platform/messaging/tables";
