import { InvalidArgumentError } from "./errors.ts";
import { field, integer, required, validate, violation } from "./validation.ts";

/**
 * The checks of a payment card, made when payments tokenizes one (CreatePaymentMethod), the
 * only place a card is taken: a typo is INVALID_ARGUMENT at checkout, not a cancelled order
 * later. Errors name the field at fault (`card.number`, …) and never quote the number: it
 * would end up in logs and traces.
 */

/** A card as a request carries it (the `bazaar.payments.v1.Card` message's fields). */
export interface CardInput {
  /** Digits, spaces allowed. */
  number: string;
  expiryMonth: number;
  expiryYear: number;
  cvc: string;
}

/** A card of valid form: the number as digits only. */
export interface PaymentCard {
  /** The number's digits, without spaces. */
  number: string;
  /** 1 to 12. */
  expiryMonth: number;
  /** A four-digit year, at most {@link maxYearsAhead} years from now. */
  expiryYear: number;
  /** 3 or 4 digits. */
  cvc: string;
}

/** Years ahead a card's expiry may lie; real cards are issued for at most a few. */
export const maxYearsAhead = 50;

/** True if the digits pass the Luhn checksum every card number carries in its last digit. */
export function luhnValid(digits: string): boolean {
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
 * Checks the form of a card as of `now` and returns it with the number's spaces removed, or
 * throws INVALID_ARGUMENT naming every field at fault (card, card.number …). Whether the card has expired is
 * {@link requireUnexpired}'s question: it depends on the day, and a retry of a request made
 * before the card expired must still get its answer back.
 */
export function validatePaymentCard(card: CardInput | undefined, now = new Date()): PaymentCard {
  const limit = now.getUTCFullYear() + maxYearsAhead;
  return validate({
    card: field(
      "card",
      card,
      required((c) =>
        validate({
          number: field("number", c.number, cardNumber),
          expiryMonth: field("expiry_month", c.expiryMonth, integer(1, 12)),
          expiryYear: field("expiry_year", c.expiryYear, (year) => {
            if (year < 1000 || year > 9999) violation(`must be a four-digit year such as 2030, got ${year}`);
            if (year > limit) violation(`must be at most ${limit}, got ${year}`);
            return year;
          }),
          cvc: field("cvc", c.cvc, (cvc) => (/^[0-9]{3,4}$/.test(cvc) ? cvc : violation("must be 3 or 4 digits"))),
        }),
      ),
    ),
  }).card;
}

/** A card number's digits (spaces removed): 12 to 19, with a valid check digit. */
function cardNumber(number: string): string {
  if (!/^[0-9 ]*$/.test(number)) violation("must be digits (spaces allowed)");
  const digits = number.replaceAll(" ", "");
  if (digits.length < 12 || digits.length > 19) violation(`must have 12 to 19 digits, got ${digits.length}`);
  if (!luhnValid(digits)) violation("is not a valid card number (its check digit does not match); check for a typo");
  return digits;
}

/**
 * Refuses a card past its expiry month on the day `now` (UTC): a card is good through the last
 * day of that month. The field named is the month when the year is this one, else the year.
 */
export function requireUnexpired(card: Pick<PaymentCard, "expiryMonth" | "expiryYear">, now = new Date()): void {
  const { expiryMonth: month, expiryYear: year } = card;
  if (hasExpired(card, now)) {
    const field = year === now.getUTCFullYear() ? "card.expiry_month" : "card.expiry_year";
    throw new InvalidArgumentError(`the card expired in ${String(month).padStart(2, "0")}/${year}; use another card`, field);
  }
}

/** True if the card is past its expiry month on the day `now` (UTC); see {@link requireUnexpired}. */
export function hasExpired(card: Pick<PaymentCard, "expiryMonth" | "expiryYear">, now = new Date()): boolean {
  const thisYear = now.getUTCFullYear();
  return card.expiryYear < thisYear || (card.expiryYear === thisYear && card.expiryMonth < now.getUTCMonth() + 1);
}
