import { status } from "@grpc/grpc-js";
import { RpcError } from "@bazaar/platform/errors";

/**
 * What the orders saga needs from other services, as a small interface: production
 * implements it with gRPC clients (grpc-ports.ts), tests with honest in-memory fakes.
 *
 * Every call is idempotent by a key derived from the order, so a step can be replayed after a
 * crash or a timeout: reserve/commit/release by order id, charge by "order:<id>", refund by
 * "refund:<id>". A call fails by throwing; {@link isTransient} tells a failure worth retrying
 * from a refusal.
 */
export interface SagaPorts {
  /** Names and prices of products, from the catalog in one call; unknown ids come back in `missing`. */
  priceLines(productIds: readonly string[]): Promise<PricedProducts>;
  /** Holds stock for the order, all lines or none. */
  reserve(orderId: string, lines: readonly StockLine[]): Promise<ReserveOutcome>;
  /** Turns the order's reservation into a sale. */
  commit(orderId: string): Promise<CommitOutcome>;
  /** Gives the order's reserved stock back; succeeds when there is nothing to release. */
  release(orderId: string): Promise<void>;
  /** Charges the payment method; a declined card, or a token payments will not charge, is an outcome, not an error. */
  charge(request: ChargeRequest): Promise<ChargeOutcome>;
  /** Refunds a captured payment. */
  refund(request: RefundRequest): Promise<void>;
}

/** A product's name and price as the catalog has it. */
export interface PricedProduct {
  id: string;
  name: string;
  unitPriceMinor: number;
  currency: string;
}

/** The answer of {@link SagaPorts.priceLines}. */
export interface PricedProducts {
  found: Map<string, PricedProduct>;
  missing: string[];
}

/** A quantity of one product. */
export interface StockLine {
  productId: string;
  quantity: number;
}

/** Reserved, or refused because a product is short (with the short products' ids when known). */
export type ReserveOutcome = { kind: "reserved" } | { kind: "out_of_stock"; productIds: string[]; message: string };

/** Committed, or refused because the reservation is gone (expired, released, never made). */
export type CommitOutcome = { kind: "committed" } | { kind: "refused"; message: string };

/** A charge of an order's total. */
export interface ChargeRequest {
  idempotencyKey: string;
  orderId: string;
  userId: string;
  amountMinor: number;
  currency: string;
  /**
   * The shopper's payment method token (from payments' CreatePaymentMethod). Undefined only
   * when replaying a charge of a saga that held a card before tokens (see migration 0001):
   * payments then answers with the payment the key made, if any.
   */
  paymentMethodToken: string | undefined;
}

/**
 * The money was taken; or the card was declined (a FAILED payment, no money taken); or
 * payments would not charge the token at all (expired, used, not the user's: no payment).
 */
export type ChargeOutcome =
  | { kind: "captured"; paymentId: string }
  | { kind: "declined"; paymentId: string; reason: string }
  | { kind: "payment_method_unusable"; message: string };

/** A refund of a whole payment. */
export interface RefundRequest {
  idempotencyKey: string;
  paymentId: string;
  reason: string;
}

/** The idempotency key of an order's charge: one order, at most one charge. */
export const chargeKey = (orderId: string) => `order:${orderId}`;
/** The idempotency key of an order's refund. */
export const refundKey = (orderId: string) => `refund:${orderId}`;

// A peer that is down, overloaded, slow or failing inside may answer differently next time;
// so may one that refused our credentials (identity rotating keys, a secret being fixed): an
// order waits for the operator rather than being cancelled for the shop's own misconfiguration.
const transientCodes = new Set([
  status.UNAVAILABLE,
  status.DEADLINE_EXCEEDED,
  status.RESOURCE_EXHAUSTED,
  status.INTERNAL,
  status.UNKNOWN,
  status.ABORTED,
  status.CANCELLED,
  status.UNAUTHENTICATED,
  status.PERMISSION_DENIED,
]);

/**
 * True if a failed call may succeed when tried again. Errors that are not RpcErrors (a
 * connection refused while fetching a token, a bug) count as transient too: the step is
 * retried with backoff, never skipped.
 */
export function isTransient(err: unknown): boolean {
  return !(err instanceof RpcError) || transientCodes.has(err.code);
}

/** A short description of a failure for logs and the saga's last_error. */
export function describeError(err: unknown): string {
  if (err instanceof RpcError) return `${err.codeName}: ${err.message}`.slice(0, 500);
  return (err instanceof Error ? `${err.name}: ${err.message}` : String(err)).slice(0, 500);
}
