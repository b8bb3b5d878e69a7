import { sql } from "drizzle-orm";
import { customType, index, integer, jsonb, pgTable, primaryKey, text, timestamp, uuid } from "drizzle-orm/pg-core";

const bytea = customType<{ data: Uint8Array; driverData: Buffer }>({
  dataType: () => "bytea",
  toDriver: (value) => Buffer.from(value),
  fromDriver: (value) => new Uint8Array(value),
});

/**
 * The transactional outbox. A service writes an event here in the same transaction as the
 * change that caused it; the relay publishes it and sets published_at only when the broker
 * confirmed it. The row id is the message id consumers deduplicate by. Every service that
 * publishes re-exports this table from its drizzle schema, so its migrations create it.
 */
export const outbox = pgTable(
  "outbox",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    routingKey: text("routing_key").notNull(),
    payload: bytea("payload").notNull(),
    /** AMQP headers to send, among them the W3C traceparent of the change. */
    headers: jsonb("headers").$type<Record<string, string>>().notNull().default({}),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
    publishedAt: timestamp("published_at", { withTimezone: true }),
    attempts: integer("attempts").notNull().default(0),
    lastError: text("last_error"),
  },
  (t) => [index("outbox_unpublished_idx").on(t.createdAt).where(sql`published_at is null`)],
);

/**
 * The inbox: one row per (consumer, message id) handled, written in the same transaction as
 * the handler's effects, so a redelivered or duplicated message has its effect once. Every
 * service that consumes re-exports it from its drizzle schema.
 */
export const inbox = pgTable(
  "inbox",
  {
    consumer: text("consumer").notNull(),
    messageId: text("message_id").notNull(),
    processedAt: timestamp("processed_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.consumer, t.messageId] })],
);
