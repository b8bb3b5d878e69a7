import { Counter } from "prom-client";
import { AbortedError } from "@bazaar/platform/errors";
import { registry } from "@bazaar/platform/metrics";
import { hasExpired, type PaymentCard, requireUnexpired, validatePaymentCard } from "@bazaar/platform/payment-card";
import type { Card } from "@bazaar/proto/bazaar/payments/v1/payments_pb";

/**
 * A simulated card processor, the stand-in for Stripe or Adyen. A card is vaulted first
 * ({@link SimulatedProcessor.vault}) and charged by the processor's reference to it, never by
 * its number. Test cards decide the outcome (like Stripe's test cards and their tokens
 * tok_visa, tok_chargeDeclined …): 4242 4242 4242 4242 succeeds, 4000 0000 0000 0002 is
 * declined, 4000 0000 0000 9995 has insufficient funds, any other valid number succeeds. Fault
 * settings make it slow or unavailable on purpose, like the OpenTelemetry demo's
 * `paymentFailure` flag.
 */

/** Card numbers with a fixed outcome. */
export const testCards = {
  success: "4242424242424242",
  declined: "4000000000000002",
  insufficientFunds: "4000000000009995",
} as const;

/**
 * The references the simulated vault gives cards, by outcome (Stripe's test token names). A
 * real processor's reference is unique per card; these stand for "a card that will do this".
 */
export const processorReferences = {
  visa: "tok_visa",
  declined: "tok_chargeDeclined",
  insufficientFunds: "tok_chargeDeclinedInsufficientFunds",
  /** Any other valid card: charges succeed. */
  approved: "tok_approved",
} as const;

/** What the processor says when no money was taken, in words a shopper understands. */
export const declineReasons = {
  declined: "Your card was declined.",
  insufficientFunds: "Your card has insufficient funds.",
  expired: "Your card has expired.",
  unavailable: "The payment processor is unavailable; no money was taken.",
} as const;

/** A card that passed validation. Only what {@link VaultedCard} holds may be stored; the number never leaves memory. */
export interface ValidCard {
  /** The number without spaces. */
  digits: string;
  last4: string;
  expiryMonth: number;
  expiryYear: number;
}

/** A card in the processor's vault, as payments may keep it: no number, no security code. */
export interface VaultedCard {
  /** The processor's reference: what a charge names. */
  reference: string;
  last4: string;
  /** "visa", "mastercard", "amex", "discover", or "". */
  brand: string;
  expiryMonth: number;
  expiryYear: number;
}

/** How the simulated processor misbehaves; no faults is `{ failureRate: 0, addedLatencyMs: 0 }`. */
export interface Faults {
  /** The share of charges that fail as if the processor were down, 0 to 1. */
  failureRate: number;
  /** Milliseconds added to every processor call, 0 to 10000. */
  addedLatencyMs: number;
}

/** The outcome of a charge: captured, or not with the reason. */
export type ChargeOutcome = { captured: true } | { captured: false; reason: string };

/**
 * Checks the form of a card ({@link validatePaymentCard}: number, Luhn, month, year, security
 * code) and keeps only what vaulting needs: the security code is checked, then dropped.
 */
export function validateCard(card: Card | undefined): ValidCard {
  const { number, expiryMonth, expiryYear }: PaymentCard = validatePaymentCard(card);
  return { digits: number, last4: number.slice(-4), expiryMonth, expiryYear };
}

/** A card's brand from its number's prefix (the issuer identification number ranges). */
export function cardBrand(digits: string): string {
  if (digits.startsWith("4")) return "visa";
  const two = Number(digits.slice(0, 2));
  const four = Number(digits.slice(0, 4));
  if ((two >= 51 && two <= 55) || (four >= 2221 && four <= 2720)) return "mastercard";
  if (two === 34 || two === 37) return "amex";
  if (digits.startsWith("6011") || digits.startsWith("65")) return "discover";
  return "";
}

/** Calls made to the processor, by operation and outcome. */
export const processorCalls = new Counter({
  name: "bazaar_payments_processor_calls_total",
  help: "Calls to the (simulated) card processor, by operation (charge, refund) and outcome (captured, declined, unavailable, refunded).",
  labelNames: ["operation", "outcome"] as const,
  registers: [registry],
});

/** Sleeps `ms`, or rejects as soon as `signal` aborts (the caller gave up: no point going on). */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(gaveUp());
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    if (signal.aborted) onAbort();
    else signal.addEventListener("abort", onAbort, { once: true });
  });
}

function gaveUp(): AbortedError {
  return new AbortedError("the call was cancelled or ran out of time while the processor was working; no money was taken, retry with the same idempotency key");
}

/** Options of {@link SimulatedProcessor}. */
export interface SimulatedProcessorOptions {
  /** A number in [0, 1) per charge, compared with the failure rate; tests pass their own. */
  random?: () => number;
  /** The clock cards' expiry is checked against. */
  now?: () => Date;
}

/** The simulated processor. Every call first waits the added latency, abortable by the caller's signal. */
export class SimulatedProcessor {
  private readonly random: () => number;
  private readonly now: () => Date;

  constructor(options: SimulatedProcessorOptions = {}) {
    this.random = options.random ?? Math.random;
    this.now = options.now ?? (() => new Date());
  }

  /**
   * Puts a card in the vault and returns the reference to charge it by, with what may be kept
   * of it. An expired card is INVALID_ARGUMENT (naming card.expiry_month or card.expiry_year).
   */
  vault(card: ValidCard): VaultedCard {
    requireUnexpired(card, this.now());
    const { digits, last4, expiryMonth, expiryYear } = card;
    const brand = cardBrand(digits);
    const reference =
      digits === testCards.declined
        ? processorReferences.declined
        : digits === testCards.insufficientFunds
          ? processorReferences.insufficientFunds
          : digits === testCards.success
            ? processorReferences.visa
            : processorReferences.approved;
    return { reference, last4, brand, expiryMonth, expiryYear };
  }

  /**
   * Charges a vaulted card: captured, or declined/expired/unavailable with the reason (never
   * an error for those: no money moved, and the payment records why).
   */
  async charge(card: VaultedCard, faults: Faults, signal: AbortSignal): Promise<ChargeOutcome> {
    await this.delay(faults, signal);
    const outcome = this.decide(card, faults);
    processorCalls.inc({
      operation: "charge",
      outcome: outcome.captured ? "captured" : outcome.reason === declineReasons.unavailable ? "unavailable" : "declined",
    });
    return outcome;
  }

  /** Gives back a captured charge. The failure rate models charges only; refunds always go through. */
  async refund(faults: Faults, signal: AbortSignal): Promise<void> {
    await this.delay(faults, signal);
    processorCalls.inc({ operation: "refund", outcome: "refunded" });
  }

  private async delay(faults: Faults, signal: AbortSignal): Promise<void> {
    if (signal.aborted) throw gaveUp();
    if (faults.addedLatencyMs > 0) await sleep(faults.addedLatencyMs, signal);
  }

  private decide(card: VaultedCard, faults: Faults): ChargeOutcome {
    if (faults.failureRate > 0 && this.random() < faults.failureRate) return { captured: false, reason: declineReasons.unavailable };
    // The card may have expired since it was vaulted (a token lives minutes, a month can end in them).
    if (hasExpired(card, this.now())) return { captured: false, reason: declineReasons.expired };
    if (card.reference === processorReferences.declined) return { captured: false, reason: declineReasons.declined };
    if (card.reference === processorReferences.insufficientFunds) return { captured: false, reason: declineReasons.insufficientFunds };
    return { captured: true };
  }
}
