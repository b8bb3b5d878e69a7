import { sql } from "drizzle-orm";
import { bigint, check, doublePrecision, index, integer, pgTable, smallint, text, timestamp, unique, uuid } from "drizzle-orm/pg-core";

/** Where a payment stands; the proto's PaymentStatus without the UNSPECIFIED zero value. */
export const paymentStatuses = ["CAPTURED", "FAILED", "REFUNDED"] as const;
export type PaymentStatusName = (typeof paymentStatuses)[number];

/**
 * A tokenized card (CreatePaymentMethod): single-use, short-lived, one user's. Neither the card
 * number nor its security code is here: the processor vaulted the card, and what is kept is
 * its reference (which decides the simulated outcome), the last four digits, the brand and the
 * expiry. The token itself is not stored either, only its SHA-256 (a 256-bit random token
 * cannot be guessed from its hash, so no key is needed).
 */
export const paymentMethods = pgTable(
  "payment_methods",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    /** SHA-256 (hex) of the token the user was given. */
    tokenHash: text("token_hash").notNull().unique(),
    /** The user it was issued to: only their charges may use it. */
    userId: uuid("user_id").notNull(),
    /** The processor's reference to the vaulted card. */
    processorReference: text("processor_reference").notNull(),
    cardLast4: text("card_last4").notNull(),
    /** "visa", "mastercard", "amex", "discover", or "" when unknown. */
    cardBrand: text("card_brand").notNull(),
    cardExpiryMonth: smallint("card_expiry_month").notNull(),
    cardExpiryYear: smallint("card_expiry_year").notNull(),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
    /** After this the token is refused. */
    expiresAt: timestamp("expires_at", { withTimezone: true }).notNull(),
    /** The charge that used it up (one per token), null while unused. */
    paymentId: uuid("payment_id")
      .unique()
      .references(() => payments.id),
  },
  (t) => [
    index("payment_methods_expires_at_idx").on(t.expiresAt),
    check("payment_methods_card_last4_digits", sql`${t.cardLast4} ~ '^[0-9]{4}$'`),
    check("payment_methods_expiry_month_range", sql`${t.cardExpiryMonth} between 1 and 12`),
  ],
);

/**
 * One charge attempt, whatever its outcome. The card is kept only as its last four digits (from
 * the payment method it used); the number never reaches this service's database.
 */
export const payments = pgTable(
  "payments",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    orderId: uuid("order_id").notNull(),
    userId: uuid("user_id").notNull(),
    /** The caller's key for this charge: one payment per key, ever. */
    idempotencyKey: text("idempotency_key").notNull().unique(),
    /** HMAC-SHA-256 (hex) of what was asked, to tell a retry from a different request reusing the key. */
    requestHash: text("request_hash").notNull(),
    amountMinor: bigint("amount_minor", { mode: "number" }).notNull(),
    currency: text("currency").notNull(),
    status: text("status", { enum: paymentStatuses }).notNull(),
    /** Why it failed, for the shopper; null unless FAILED. */
    failureReason: text("failure_reason"),
    cardLast4: text("card_last4").notNull(),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    index("payments_order_id_idx").on(t.orderId),
    check("payments_amount_minor_range", sql`${t.amountMinor} > 0 and ${t.amountMinor} <= 100000000`),
    check("payments_currency_iso", sql`${t.currency} ~ '^[A-Z]{3}$'`),
    check("payments_status_known", sql`${t.status} in ('CAPTURED', 'FAILED', 'REFUNDED')`),
    check("payments_failure_reason_iff_failed", sql`(${t.status} = 'FAILED') = (${t.failureReason} is not null)`),
    check("payments_card_last4_digits", sql`${t.cardLast4} ~ '^[0-9]{4}$'`),
  ],
);

/** A refund gives back all of one captured payment, so a payment has at most one. */
export const refunds = pgTable("refunds", {
  id: uuid("id").primaryKey().defaultRandom(),
  paymentId: uuid("payment_id")
    .notNull()
    .unique()
    .references(() => payments.id),
  idempotencyKey: text("idempotency_key").notNull().unique(),
  /** HMAC-SHA-256 (hex) of (payment id, reason). */
  requestHash: text("request_hash").notNull(),
  reason: text("reason").notNull().default(""),
  createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
});

/** What a ledger entry records. */
export const ledgerKinds = ["CHARGE", "REFUND"] as const;

/**
 * Money movements, append-only. Amounts are signed (a CHARGE is positive, a REFUND negative),
 * so a payment's balance is the sum of its entries. At most one entry of each kind per
 * payment: the database itself refuses a second charge or refund of the same payment.
 */
export const ledgerEntries = pgTable(
  "ledger_entries",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    paymentId: uuid("payment_id")
      .notNull()
      .references(() => payments.id),
    kind: text("kind", { enum: ledgerKinds }).notNull(),
    amountMinor: bigint("amount_minor", { mode: "number" }).notNull(),
    currency: text("currency").notNull(),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    unique("ledger_entries_payment_kind_unique").on(t.paymentId, t.kind),
    check("ledger_entries_sign_matches_kind", sql`(${t.kind} = 'CHARGE' and ${t.amountMinor} > 0) or (${t.kind} = 'REFUND' and ${t.amountMinor} < 0)`),
    check("ledger_entries_currency_iso", sql`${t.currency} ~ '^[A-Z]{3}$'`),
  ],
);

/**
 * The simulated processor's fault settings: one row (id 1), shared by every replica. No row
 * means no faults; SetFaultSettings upserts it.
 */
export const faultSettings = pgTable(
  "fault_settings",
  {
    id: smallint("id").primaryKey().default(1),
    failureRate: doublePrecision("failure_rate").notNull().default(0),
    addedLatencyMs: integer("added_latency_ms").notNull().default(0),
    updatedAt: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
    /** The subject of the admin token that set them. */
    updatedBy: text("updated_by").notNull(),
  },
  (t) => [
    check("fault_settings_single_row", sql`${t.id} = 1`),
    check("fault_settings_failure_rate_range", sql`${t.failureRate} >= 0 and ${t.failureRate} <= 1`),
    check("fault_settings_added_latency_range", sql`${t.addedLatencyMs} >= 0 and ${t.addedLatencyMs} <= 10000`),
  ],
);

/** A payment row. */
export type PaymentRow = typeof payments.$inferSelect;
/** A payment method row. */
export type PaymentMethodRow = typeof paymentMethods.$inferSelect;

// The transactional outbox: Payment* events are written with the change that caused them.
export { outbox } from "@bazaar/platform/messaging/tables";
