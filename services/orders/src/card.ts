import { InvalidArgumentError } from "@bazaar/platform/errors";
import type { Card as CardMessage } from "@bazaar/proto/bazaar/payments/v1/payments_pb";
import type { Card } from "./saga-ports.ts";

const maxYearsAhead = 50;

/** True if the digits pass the Luhn check, as every real card number (and the processor's test cards) does. */
function luhnValid(digits: string): boolean {
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = digits.charCodeAt(digits.length - 1 - i) - 48;
    if (i % 2 === 1) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return sum % 10 === 0;
}

/**
 * Checks the form of a card the way payments will, naming the field at fault, so a typo is
 * INVALID_ARGUMENT now rather than a cancelled order later. The number is never quoted back.
 * Whether it has expired is {@link requireUnexpired}'s question, asked of new orders only.
 */
export function validateCard(card: CardMessage | undefined, now = new Date()): Card {
  if (!card) throw new InvalidArgumentError("is required", "card");
  if (!/^[\d ]+$/.test(card.number)) throw new InvalidArgumentError("must be digits (spaces allowed)", "card.number");
  const digits = card.number.replaceAll(" ", "");
  if (digits.length < 12 || digits.length > 19) throw new InvalidArgumentError(`must have 12 to 19 digits, got ${digits.length}`, "card.number");
  if (!luhnValid(digits)) throw new InvalidArgumentError("is not a valid card number (its check digit does not match); check for a typo", "card.number");
  if (card.expiryMonth < 1 || card.expiryMonth > 12) throw new InvalidArgumentError(`must be between 1 and 12, got ${card.expiryMonth}`, "card.expiry_month");
  if (card.expiryYear < 1000 || card.expiryYear > 9999) throw new InvalidArgumentError(`must be a four-digit year such as 2030, got ${card.expiryYear}`, "card.expiry_year");
  const limit = now.getUTCFullYear() + maxYearsAhead;
  if (card.expiryYear > limit) throw new InvalidArgumentError(`must be at most ${limit}, got ${card.expiryYear}`, "card.expiry_year");
  if (!/^\d{3,4}$/.test(card.cvc)) throw new InvalidArgumentError("must be 3 or 4 digits", "card.cvc");
  return { number: digits, expiryMonth: card.expiryMonth, expiryYear: card.expiryYear, cvc: card.cvc };
}

/**
 * Refuses a card past its expiry month. Asked only when an order is placed, not of a retry of
 * one placed before the card expired, which gets its order back like any retry.
 */
export function requireUnexpired(card: Card, now = new Date()): void {
  const year = now.getUTCFullYear();
  if (card.expiryYear < year || (card.expiryYear === year && card.expiryMonth < now.getUTCMonth() + 1)) {
    throw new InvalidArgumentError(`the card expired in ${String(card.expiryMonth).padStart(2, "0")}/${card.expiryYear}; use another card`, "card.expiry_year");
  }
}
