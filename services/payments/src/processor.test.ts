import { describe, expect, test } from "bun:test";
import { create } from "@bufbuild/protobuf";
import { AbortedError, InvalidArgumentError } from "@bazaar/platform/errors";
import { CardSchema } from "@bazaar/proto/bazaar/payments/v1/payments_pb";
import { checkExpiry, declineReasons, luhnValid, SimulatedProcessor, testCards, validateCard, type ValidCard } from "./processor.ts";

const now = new Date("2030-06-15T12:00:00Z");
const card = (over: Partial<{ number: string; expiryMonth: number; expiryYear: number; cvc: string }> = {}) =>
  create(CardSchema, { number: "4242 4242 4242 4242", expiryMonth: 6, expiryYear: 2030, cvc: "123", ...over });

function fieldOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    if (err instanceof InvalidArgumentError) return err.field;
    throw err;
  }
  return undefined;
}

describe("card validation", () => {
  test("the Luhn check accepts real test numbers and rejects a changed digit", () => {
    for (const n of [testCards.success, testCards.declined, testCards.insufficientFunds, "5555555555554444", "378282246310005", "6011111111111117"]) {
      expect(luhnValid(n)).toBe(true);
    }
    expect(luhnValid("4242424242424241")).toBe(false);
    expect(luhnValid("4000000000000003")).toBe(false);
  });

  test("spaces are removed, and only the last four digits are kept besides the number", () => {
    expect(validateCard(card({ number: " 4242424242 424242 " }))).toEqual({ digits: testCards.success, last4: "4242", expiryMonth: 6, expiryYear: 2030 });
  });

  test("a card is good through its expiry month, and expired after it", () => {
    const expiry = (expiryMonth: number, expiryYear: number) => fieldOf(() => checkExpiry(validateCard(card({ expiryMonth, expiryYear })), now));
    expect(expiry(6, 2030)).toBeUndefined();
    expect(expiry(5, 2030)).toBe("card.expiry_month");
    expect(expiry(12, 2029)).toBe("card.expiry_year");
    expect(expiry(1, 2031)).toBeUndefined();
    expect(expiry(1, 2081)).toBe("card.expiry_year");
  });

  test("each malformed field is named, and the number never appears in the message", () => {
    const cases: [string, ReturnType<typeof card> | undefined][] = [
      ["card", undefined],
      ["card.number", card({ number: "" })],
      ["card.number", card({ number: "12345678901" })],
      ["card.number", card({ number: "4242424242424242424" + "2" })],
      ["card.number", card({ number: "4242424242424243" })],
      ["card.number", card({ number: "4242x242424242424" })],
      ["card.expiry_month", card({ expiryMonth: 13 })],
      ["card.expiry_year", card({ expiryYear: 30 })],
      ["card.expiry_year", card({ expiryYear: 10000 })],
      ["card.cvc", card({ cvc: "" })],
      ["card.cvc", card({ cvc: "1 2 3" })],
    ];
    for (const [field, c] of cases) {
      let message = "";
      try {
        validateCard(c);
      } catch (err) {
        message = (err as Error).message;
        expect({ field, got: (err as InvalidArgumentError).field }).toEqual({ field, got: field });
      }
      expect(message).not.toBe("");
      expect(message).not.toContain("4242424242");
    }
  });
});

describe("simulated processor", () => {
  const valid = (digits: string): ValidCard => ({ digits, last4: digits.slice(-4), expiryMonth: 1, expiryYear: 2031 });
  const never = new AbortController().signal;

  test("test cards decide the outcome; any other valid number is captured", async () => {
    const processor = new SimulatedProcessor();
    const noFaults = { failureRate: 0, addedLatencyMs: 0 };
    expect(await processor.charge(valid(testCards.success), noFaults, never)).toEqual({ captured: true });
    expect(await processor.charge(valid(testCards.declined), noFaults, never)).toEqual({ captured: false, reason: declineReasons.declined });
    expect(await processor.charge(valid(testCards.insufficientFunds), noFaults, never)).toEqual({ captured: false, reason: declineReasons.insufficientFunds });
    expect(await processor.charge(valid("5555555555554444"), noFaults, never)).toEqual({ captured: true });
  });

  test("a charge fails as unavailable when the random draw is below the failure rate, and only then", async () => {
    let draw = 0;
    const processor = new SimulatedProcessor({ random: () => draw });
    const half = { failureRate: 0.5, addedLatencyMs: 0 };
    draw = 0.49;
    expect(await processor.charge(valid(testCards.success), half, never)).toEqual({ captured: false, reason: declineReasons.unavailable });
    draw = 0.5;
    expect(await processor.charge(valid(testCards.success), half, never)).toEqual({ captured: true });
    draw = 0;
    expect(await processor.charge(valid(testCards.success), { failureRate: 0, addedLatencyMs: 0 }, never)).toEqual({ captured: true });
  });

  test("refunds wait the added latency but never fail", async () => {
    const processor = new SimulatedProcessor({ random: () => 0 });
    const started = performance.now();
    await processor.refund({ failureRate: 1, addedLatencyMs: 30 }, never);
    expect(performance.now() - started).toBeGreaterThanOrEqual(29);
  });

  test("an expired card is refused before any latency or outcome", async () => {
    const processor = new SimulatedProcessor({ now: () => now });
    const expired = { ...valid(testCards.success), expiryMonth: 5, expiryYear: 2030 };
    const started = performance.now();
    const err = await processor.charge(expired, { failureRate: 0, addedLatencyMs: 5_000 }, never).catch((e: unknown) => e);
    expect((err as InvalidArgumentError).field).toBe("card.expiry_month");
    expect(performance.now() - started).toBeLessThan(1_000);
  });

  test("the added latency stops as soon as the caller's signal aborts", async () => {
    const processor = new SimulatedProcessor();
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 30);
    const started = performance.now();
    const outcome = await processor.charge(valid(testCards.success), { failureRate: 0, addedLatencyMs: 10_000 }, controller.signal).catch((err: unknown) => err);
    expect(outcome).toBeInstanceOf(AbortedError);
    expect(performance.now() - started).toBeLessThan(1_000);
    expect(await processor.charge(valid(testCards.success), { failureRate: 0, addedLatencyMs: 0 }, controller.signal).catch((err: unknown) => err)).toBeInstanceOf(AbortedError);
  });
});
