import { sql } from "drizzle-orm";
import { index, pgTable, text, timestamp, uuid } from "drizzle-orm/pg-core";

/**
 * The messages the shop sends each user, one per event that concerns them. `created_at` is
 * kept to the millisecond so a page token (which carries it as a JavaScript date) names a
 * position exactly; ties are broken by id.
 */
export const notifications = pgTable(
  "notifications",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    userId: uuid("user_id").notNull(),
    /** What it is about: the event's name without its version, e.g. "order.confirmed". */
    kind: text("kind").notNull(),
    title: text("title").notNull(),
    body: text("body").notNull(),
    orderId: uuid("order_id"),
    /** The id of the message it was made from (the producer's outbox row id). */
    sourceMessageId: text("source_message_id").notNull(),
    readAt: timestamp("read_at", { withTimezone: true, precision: 3 }),
    createdAt: timestamp("created_at", { withTimezone: true, precision: 3 }).notNull().defaultNow(),
  },
  (t) => [
    // A user's listing, newest first, is keyset on (created_at, id) within the user. NULLS FIRST
    // is Postgres's default for DESC, so the index matches a plain `order by ... desc`.
    index("notifications_user_created_id_idx").on(t.userId, t.createdAt.desc().nullsFirst(), t.id.desc().nullsFirst()),
    // Unread counts and the unread-only listing read only unread rows, which are few.
    index("notifications_user_unread_idx").on(t.userId, t.createdAt.desc().nullsFirst(), t.id.desc().nullsFirst()).where(sql`read_at is null`),
  ],
);

/** A notification row. */
export type NotificationRow = typeof notifications.$inferSelect;

// The inbox makes each event's notification happen once, however often it is delivered.
export { inbox } from "@bazaar/platform/messaging/tables";
