import { createHash, createHmac, randomBytes } from "node:crypto";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import { eq, getTableColumns, sql } from "drizzle-orm";
import { type Database, postgresError } from "@bazaar/platform/db";
import { AbortedError, FailedPreconditionError, InvalidArgumentError, NotFoundError } from "@bazaar/platform/errors";
import { log } from "@bazaar/platform/log";
import { paymentMethodTokenPrefix } from "@bazaar/platform/validation";
import { events } from "@bazaar/platform/messaging/events";
import { enqueueEvent, type OutboxSignal } from "@bazaar/platform/messaging/outbox";
import { ledgerEntries, type PaymentMethodRow, type PaymentRow, paymentMethods, payments, refunds } from "./db/schema.ts";
import type * as schema from "./db/schema.ts";
import type { FaultSettingsStore } from "./fault-settings.ts";
import type { SimulatedProcessor, ValidCard } from "./processor.ts";

/** The payments database. */
export type PaymentsDatabase = Database<typeof schema>;

/** A validated charge. */
export interface ChargeCommand {
  idempotencyKey: string;
  orderId: string;
  userId: string;
  amountMinor: number;
  currency: string;
  /** The payment method token; undefined only for a replay of a charge made before (see charge()). */
  paymentMethodToken: string | undefined;
}

/** A new payment method, as CreatePaymentMethod answers it: the token is shown this once. */
export interface IssuedPaymentMethod {
  token: string;
  row: PaymentMethodRow;
}

/** A validated refund. */
export interface RefundCommand {
  idempotencyKey: string;
  paymentId: string;
  reason: string;
}

/** The caller's budget: the call's deadline and the signal that aborts when it passes or the caller cancels. */
export interface CallBudget {
  deadline: Date;
  signal: AbortSignal;
}

/** Options of {@link PaymentStore}. */
export interface PaymentStoreOptions {
  /** The HMAC key of request fingerprints (see REQUEST_HASH_SECRET). */
  requestHashSecret: string;
  /** How long a payment method token can be charged, in milliseconds (see PAYMENT_METHOD_TTL_SECONDS). */
  paymentMethodTtlMs: number;
  /** Woken after a commit that wrote events (the outbox relay). */
  outbox?: OutboxSignal;
}

// Advisory-lock key spaces (the first int of the two-int form), so a charge key and a refund
// key that happen to be equal never wait for each other.
const chargeLockSpace = 0x5041_0001;
const refundLockSpace = 0x5041_0002;
// Longest a duplicate waits for the first request with its key: more than the largest
// added latency (10 s), so a slow but healthy first request is never given up on.
const maxLockWaitMs = 15_000;

/**
 * Payments: charges through the processor, refunds, and the ledger, each change with its event
 * in the same transaction (outbox).
 *
 * Idempotency. A charge runs in one transaction that first takes a transaction-scoped advisory
 * lock on its idempotency key, then looks the key up, and only if it is new calls the processor
 * and writes the payment, its ledger entry and its event. Concurrent duplicates queue on the
 * lock; when the first commits, each finds the payment and returns it: one processor call, one
 * row, one entry. If the first fails or its process dies, its transaction rolls back and the
 * lock goes with the connection, so nothing half-done is left and the next duplicate charges.
 * An insert-first claim (a PENDING row committed before the processor call) would free the
 * connection during the call but leave, after a crash, a claimed key that no one finishes, a
 * status the proto does not have, and duplicates that must poll; here the simulated processor's
 * effect and its record commit together. (Against a real processor one would also send the key
 * on, as Stripe's Idempotency-Key, so a charge the processor took before a crash is not repeated.)
 * The unique key on idempotency_key and the one-entry-per-kind ledger constraint back this up.
 */
export class PaymentStore {
  constructor(
    private readonly database: PaymentsDatabase,
    private readonly processor: SimulatedProcessor,
    private readonly faults: FaultSettingsStore,
    private readonly options: PaymentStoreOptions,
  ) {
    this.outbox = options.outbox ?? { wake() {} };
  }

  private readonly outbox: OutboxSignal;

  /** A keyed fingerprint of a request: equal for a retry, different for anything else. */
  private fingerprint(parts: readonly (string | number)[]): string {
    return createHmac("sha256", this.options.requestHashSecret).update(JSON.stringify(parts)).digest("hex");
  }

  /**
   * Vaults a card with the processor and issues a token for it, bound to `userId`, usable once
   * until the TTL passes. Only the token's hash and the vaulted card's reference, last four
   * digits, brand and expiry are stored. An expired card is INVALID_ARGUMENT.
   */
  async createPaymentMethod(userId: string, card: ValidCard): Promise<IssuedPaymentMethod> {
    const vaulted = this.processor.vault(card);
    const token = `${paymentMethodTokenPrefix}${randomBytes(32).toString("base64url")}`;
    const [row] = await this.database.db
      .insert(paymentMethods)
      .values({
        tokenHash: tokenHash(token),
        userId,
        processorReference: vaulted.reference,
        cardLast4: vaulted.last4,
        cardBrand: vaulted.brand,
        cardExpiryMonth: vaulted.expiryMonth,
        cardExpiryYear: vaulted.expiryYear,
        expiresAt: sql`now() + ${this.options.paymentMethodTtlMs} * interval '1 millisecond'`,
      })
      .returning();
    if (!row) throw new Error("the payment method insert returned no row");
    return { token, row };
  }

  /**
   * Charges a payment method once per idempotency key. A declined or failed charge is a FAILED
   * payment, not an error. The same key with a different request is FAILED_PRECONDITION and
   * writes nothing.
   *
   * The token is checked, and used up, inside the charge's transaction, after the key's lookup:
   * a retry of a charge gets its payment back though its token is spent, and a charge that
   * fails before it is recorded (the caller gave up, the process died) leaves the token as it
   * was. It must be the user's (another user's is as unknown as a made-up one), unexpired (by
   * the database's clock) and unused; otherwise FAILED_PRECONDITION with a PAYMENT_METHOD_*
   * violation, and nothing is charged.
   *
   * Without a token a charge can only be a replay: the payment its key made for the same order,
   * user and amount comes back; anything else is INVALID_ARGUMENT. That is how the orders saga
   * learns what became of a charge it made before it carried tokens (its migration dropped the
   * card it held).
   */
  async charge(command: ChargeCommand, budget: CallBudget): Promise<PaymentRow> {
    const { idempotencyKey, orderId, userId, amountMinor, currency, paymentMethodToken } = command;
    const hashedToken = paymentMethodToken === undefined ? undefined : tokenHash(paymentMethodToken);
    const requestHash = this.fingerprint(["charge", orderId, userId, amountMinor, currency, hashedToken ?? ""]);
    // Read before the transaction: a charge holds its connection while it waits on the lock, so
    // a cache miss inside it could wait for a pool connection held by its own duplicates.
    const faults = await this.faults.current();
    const { payment, created } = await this.database.db
      .transaction(async (tx) => {
        await lockKey(tx, chargeLockSpace, idempotencyKey, budget);
        const [existing] = await tx.select().from(payments).where(eq(payments.idempotencyKey, idempotencyKey));
        if (existing) {
          const replay =
            hashedToken === undefined &&
            existing.orderId === orderId &&
            existing.userId === userId &&
            existing.amountMinor === amountMinor &&
            existing.currency === currency;
          if (existing.requestHash !== requestHash && !replay) throw keyReused(idempotencyKey);
          return { payment: existing, created: false };
        }
        if (hashedToken === undefined) {
          throw new InvalidArgumentError(
            "is required: tokenize the card with CreatePaymentMethod and send its token (only a replay of an earlier charge may leave it out)",
            "payment_method_token",
          );
        }
        // Locked, so that two charges with one token (under different keys) cannot both use it.
        // Expiry by the database's clock, the one that set expires_at.
        const [found] = await tx
          .select({ ...getTableColumns(paymentMethods), expired: sql<boolean>`${paymentMethods.expiresAt} <= now()` })
          .from(paymentMethods)
          .where(eq(paymentMethods.tokenHash, hashedToken))
          .for("update");
        const card = usablePaymentMethod(found, userId);
        const outcome = await this.processor.charge(
          {
            reference: card.processorReference,
            last4: card.cardLast4,
            brand: card.cardBrand,
            expiryMonth: card.cardExpiryMonth,
            expiryYear: card.cardExpiryYear,
          },
          faults,
          budget.signal,
        );
        const [row] = await tx
          .insert(payments)
          .values({
            orderId,
            userId,
            idempotencyKey,
            requestHash,
            amountMinor,
            currency,
            status: outcome.captured ? "CAPTURED" : "FAILED",
            failureReason: outcome.captured ? null : outcome.reason,
            cardLast4: card.cardLast4,
          })
          .returning();
        if (!row) throw new Error("the payment insert returned no row");
        await tx.update(paymentMethods).set({ paymentId: row.id }).where(eq(paymentMethods.id, card.id));
        const amount = { currencyCode: currency, amountMinor: BigInt(amountMinor) };
        if (outcome.captured) {
          await tx.insert(ledgerEntries).values({ paymentId: row.id, kind: "CHARGE", amountMinor, currency });
          await enqueueEvent(tx, events.paymentCaptured, { paymentId: row.id, orderId, userId, amount, occurTime: timestampNow() });
        } else {
          await enqueueEvent(tx, events.paymentFailed, { paymentId: row.id, orderId, userId, amount, reason: outcome.reason, occurTime: timestampNow() });
        }
        return { payment: row, created: true };
      })
      .catch((err: unknown) => concurrencyError(err, idempotencyKey));
    if (created) {
      this.outbox.wake();
      log.info("charged", { paymentId: payment.id, orderId, status: payment.status, amountMinor, currency });
    }
    return payment;
  }

  /**
   * Refunds all of a captured payment, once per idempotency key. A payment refunded already
   * (under any key) is returned as it is; a FAILED one took no money and cannot be refunded.
   */
  async refund(command: RefundCommand, budget: CallBudget): Promise<PaymentRow> {
    const { idempotencyKey, paymentId, reason } = command;
    const requestHash = this.fingerprint(["refund", paymentId, reason]);
    const faults = await this.faults.current();
    const { payment, created } = await this.database.db
      .transaction(async (tx) => {
        await lockKey(tx, refundLockSpace, idempotencyKey, budget);
        const [previous] = await tx.select().from(refunds).where(eq(refunds.idempotencyKey, idempotencyKey));
        if (previous && previous.requestHash !== requestHash) throw keyReused(idempotencyKey);
        // The row lock serialises refunds of one payment that come with different keys.
        const [current] = await tx.select().from(payments).where(eq(payments.id, paymentId)).for("update");
        if (!current) throw new NotFoundError(`no payment has id ${paymentId}`);
        if (previous || current.status === "REFUNDED") return { payment: current, created: false };
        if (current.status === "FAILED")
          throw new FailedPreconditionError(`payment ${paymentId} failed, so nothing was captured and there is nothing to refund`);
        await this.processor.refund(faults, budget.signal);
        await tx.insert(refunds).values({ paymentId, idempotencyKey, requestHash, reason });
        await tx.insert(ledgerEntries).values({ paymentId, kind: "REFUND", amountMinor: -current.amountMinor, currency: current.currency });
        const [row] = await tx.update(payments).set({ status: "REFUNDED", updatedAt: new Date() }).where(eq(payments.id, paymentId)).returning();
        if (!row) throw new Error("the payment update returned no row");
        await enqueueEvent(tx, events.paymentRefunded, {
          paymentId,
          orderId: row.orderId,
          userId: row.userId,
          amount: { currencyCode: row.currency, amountMinor: BigInt(row.amountMinor) },
          occurTime: timestampNow(),
        });
        return { payment: row, created: true };
      })
      .catch((err: unknown) => concurrencyError(err, idempotencyKey));
    if (created) {
      this.outbox.wake();
      log.info("refunded", { paymentId, orderId: payment.orderId, amountMinor: payment.amountMinor, currency: payment.currency });
    }
    return payment;
  }

  /**
   * Deletes payment methods that expired more than an hour ago, used or not: nothing can charge
   * them any more (a retry of a charge finds its payment by key), and the hour keeps a refusal
   * saying "expired" rather than "unknown" for a while. Resolves with how many it deleted.
   */
  async purgeExpiredPaymentMethods(): Promise<number> {
    const deleted = await this.database.db
      .delete(paymentMethods)
      .where(sql`${paymentMethods.expiresAt} < now() - interval '1 hour'`)
      .returning({ id: paymentMethods.id });
    return deleted.length;
  }

  /** A payment by id, or undefined. */
  async get(id: string): Promise<PaymentRow | undefined> {
    const [row] = await this.database.db.select().from(payments).where(eq(payments.id, id));
    return row;
  }
}

type Tx = Parameters<Parameters<PaymentsDatabase["db"]["transaction"]>[0]>[0];

/** The stored form of a token: SHA-256, hex. */
function tokenHash(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}

/**
 * Why a payment method token cannot be charged, as the PreconditionFailure violation's type
 * (see ChargeRequest in payments.proto).
 */
export const paymentMethodProblems = {
  notFound: "PAYMENT_METHOD_NOT_FOUND",
  expired: "PAYMENT_METHOD_EXPIRED",
  used: "PAYMENT_METHOD_USED",
} as const;

/** The payment method a charge of `userId` may use, or FAILED_PRECONDITION saying why not. */
function usablePaymentMethod(method: (PaymentMethodRow & { expired: boolean }) | undefined, userId: string): PaymentMethodRow {
  const refuse = (type: string, message: string): never => {
    throw new FailedPreconditionError(`payment_method_token: ${message}`, [{ type, subject: "payment_method_token", description: message }]);
  };
  // Someone else's token is as unknown as one never issued: a token cannot be probed for.
  if (!method || method.userId !== userId) {
    return refuse(paymentMethodProblems.notFound, "no payment method of this user has this token; tokenize the card again (CreatePaymentMethod)");
  }
  if (method.paymentId) return refuse(paymentMethodProblems.used, "was used for a charge already; a token pays once, so tokenize the card again");
  if (method.expired) return refuse(paymentMethodProblems.expired, "has expired; tokenize the card again (CreatePaymentMethod)");
  return method;
}

/**
 * Takes the transaction-scoped advisory lock of an idempotency key, waiting at most until the
 * call's deadline (lock_timeout), so a caller who gave up does not keep a connection waiting.
 */
async function lockKey(tx: Tx, space: number, key: string, budget: CallBudget): Promise<void> {
  const waitMs = Math.max(1, Math.min(maxLockWaitMs, budget.deadline.getTime() - Date.now()));
  // One statement, one round trip: the subquery sets the timeout for this transaction before
  // the outer select takes the lock (a subquery calling a volatile function is not flattened
  // into the outer one, so it runs first).
  await tx.execute(
    sql`select pg_advisory_xact_lock(${space}::int, hashtext(${key})) from (select set_config('lock_timeout', ${`${waitMs}ms`}, true)) as timeout_set`,
  );
}

/**
 * A key reused for a different request. FAILED_PRECONDITION, not INVALID_ARGUMENT: the request
 * is well-formed and would succeed with a fresh key; it fails only because of what the system
 * already holds (gRPC's rule: INVALID_ARGUMENT is for arguments that are wrong whatever the
 * state). Neither is retryable as sent, and the message says to use a new key.
 */
function keyReused(key: string): FailedPreconditionError {
  return new FailedPreconditionError(`idempotency key ${key} was used for a different request; send a new key for a new request`);
}

/** Turns a lost race into ABORTED (safe to retry with the same key); rethrows anything else. */
function concurrencyError(err: unknown, key: string): never {
  const pg = postgresError(err);
  // 55P03: lock_timeout passed while another request with this key held it.
  if (pg?.code === "55P03") throw new AbortedError(`a request with idempotency key ${key} is still in progress; retry with the same key`);
  // 23505: only reachable if the lock was bypassed; the unique keys still hold.
  if (pg?.code === "23505") throw new AbortedError(`a concurrent request with idempotency key ${key} won the race; retry with the same key`);
  throw err;
}
