import { describe, expect, test } from "bun:test";
import { InvalidArgumentError } from "./errors.ts";
import { type CardInput, luhnValid, requireUnexpired, validatePaymentCard } from "./payment-card.ts";

const now = new Date("2030-06-15T12:00:00Z");
const card = (over: Partial<CardInput> = {}): CardInput => ({ number: "4242 4242 4242 4242", expiryMonth: 6, expiryYear: 2030, cvc: "123", ...over });

/** The field an InvalidArgumentError names, or undefined if `fn` does not throw. */
function fieldOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    if (err instanceof InvalidArgumentError) return err.field;
    throw err;
  }
  return undefined;
}

describe("payment cards", () => {
  test("the Luhn check accepts real test numbers and rejects a changed digit", () => {
    for (const n of ["4242424242424242", "4000000000000002", "4000000000009995", "5555555555554444", "378282246310005", "6011111111111117"]) {
      expect(luhnValid(n)).toBe(true);
    }
    expect(luhnValid("4242424242424241")).toBe(false);
    expect(luhnValid("4000000000000003")).toBe(false);
  });

  test("spaces are removed from the number; the rest is kept as it is", () => {
    expect(validatePaymentCard(card({ number: " 4242424242 424242 ", cvc: "0123" }), now)).toEqual({
      number: "4242424242424242",
      expiryMonth: 6,
      expiryYear: 2030,
      cvc: "0123",
    });
  });

  test("a card is good through its expiry month, and expired after it", () => {
    const expiry = (expiryMonth: number, expiryYear: number) =>
      fieldOf(() => requireUnexpired(validatePaymentCard(card({ expiryMonth, expiryYear }), now), now));
    expect(expiry(6, 2030)).toBeUndefined();
    expect(expiry(5, 2030)).toBe("card.expiry_month");
    expect(expiry(12, 2029)).toBe("card.expiry_year");
    expect(expiry(1, 2031)).toBeUndefined();
    expect(expiry(12, 2080)).toBeUndefined();
    expect(expiry(1, 2081)).toBe("card.expiry_year");
    expect(() => requireUnexpired(card({ expiryMonth: 5 }), now)).toThrow("card.expiry_month: the card expired in 05/2030; use another card");
  });

  test("each malformed field is named, and the number never appears in the message", () => {
    const cases: [string, CardInput | undefined][] = [
      ["card", undefined],
      ["card.number", card({ number: "" })],
      ["card.number", card({ number: "12345678901" })],
      ["card.number", card({ number: "4242 4242" })],
      ["card.number", card({ number: "4242424242424242424" + "2" })],
      ["card.number", card({ number: "4".repeat(20) })],
      ["card.number", card({ number: "4242424242424243" })],
      ["card.number", card({ number: "4242 4242 4242 4241" })],
      ["card.number", card({ number: "4242x242424242424" })],
      ["card.number", card({ number: "4242-4242-4242-4242" })],
      ["card.expiry_month", card({ expiryMonth: 0 })],
      ["card.expiry_month", card({ expiryMonth: 13 })],
      ["card.expiry_year", card({ expiryYear: 30 })],
      ["card.expiry_year", card({ expiryYear: 10000 })],
      ["card.expiry_year", card({ expiryYear: 2081 })],
      ["card.cvc", card({ cvc: "" })],
      ["card.cvc", card({ cvc: "12" })],
      ["card.cvc", card({ cvc: "12345" })],
      ["card.cvc", card({ cvc: "abc" })],
      ["card.cvc", card({ cvc: "1 2 3" })],
    ];
    for (const [field, c] of cases) {
      let message = "";
      try {
        validatePaymentCard(c, now);
      } catch (err) {
        message = (err as Error).message;
        expect({ field, got: (err as InvalidArgumentError).field }).toEqual({ field, got: field });
      }
      expect(message).not.toBe("");
      expect(message.replaceAll(" ", "")).not.toContain("42424242");
    }
  });

  test("every malformed field is reported at once", () => {
    let violations: readonly { field: string }[] = [];
    try {
      validatePaymentCard(card({ number: "4242 4242 4242 4241", expiryMonth: 13, cvc: "12" }), now);
    } catch (err) {
      violations = (err as InvalidArgumentError).violations;
    }
    expect(violations.map((v) => v.field)).toEqual(["card.number", "card.expiry_month", "card.cvc"]);
  });
});
