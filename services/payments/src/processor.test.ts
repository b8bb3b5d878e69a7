import { describe, expect, test } from "bun:test";
import { create } from "@bufbuild/protobuf";
import { AbortedError, type InvalidArgumentError } from "@bazaar/platform/errors";
import { luhnValid } from "@bazaar/platform/payment-card";
import { CardSchema } from "@bazaar/proto/bazaar/payments/v1/payments_pb";
import { cardBrand, declineReasons, processorReferences, SimulatedProcessor, testCards, validateCard, type VaultedCard } from "./processor.ts";

const now = new Date("2030-06-15T12:00:00Z");
const card = (over: Partial<{ number: string; expiryMonth: number; expiryYear: number; cvc: string }> = {}) =>
  create(CardSchema, { number: "4242 4242 4242 4242", expiryMonth: 6, expiryYear: 2030, cvc: "123", ...over });

// The card's form and expiry are platform/src/payment-card.ts's checks, tested there.
describe("card validation", () => {
  test("spaces are removed, the security code is dropped, and only the last four digits are kept besides the number", () => {
    expect(validateCard(card({ number: " 4242424242 424242 " }))).toEqual({ digits: testCards.success, last4: "4242", expiryMonth: 6, expiryYear: 2030 });
  });

  test("the test cards pass the Luhn check", () => {
    for (const n of Object.values(testCards)) expect(luhnValid(n)).toBe(true);
  });
});

describe("simulated processor", () => {
  const processor0 = new SimulatedProcessor({ now: () => now });
  const valid = (digits: string): VaultedCard => processor0.vault({ digits, last4: digits.slice(-4), expiryMonth: 1, expiryYear: 2031 });
  const never = new AbortController().signal;

  test("vaulting keeps no number: a test card's reference names its outcome, with last4, brand and expiry", () => {
    expect(valid(testCards.success)).toEqual({ reference: processorReferences.visa, last4: "4242", brand: "visa", expiryMonth: 1, expiryYear: 2031 });
    expect(valid(testCards.declined).reference).toBe(processorReferences.declined);
    expect(valid(testCards.insufficientFunds).reference).toBe(processorReferences.insufficientFunds);
    expect(valid("5555555555554444")).toMatchObject({ reference: processorReferences.approved, brand: "mastercard" });
    for (const card of [valid(testCards.success), valid("5555555555554444")]) expect(JSON.stringify(card)).not.toContain("42424242");
    expect([cardBrand("378282246310005"), cardBrand("6011111111111117"), cardBrand("2223003122003222"), cardBrand("9999999999999995")]).toEqual([
      "amex",
      "discover",
      "mastercard",
      "",
    ]);
  });

  test("test cards decide the outcome; any other valid number is captured", async () => {
    const processor = new SimulatedProcessor({ now: () => now });
    const noFaults = { failureRate: 0, addedLatencyMs: 0 };
    expect(await processor.charge(valid(testCards.success), noFaults, never)).toEqual({ captured: true });
    expect(await processor.charge(valid(testCards.declined), noFaults, never)).toEqual({ captured: false, reason: declineReasons.declined });
    expect(await processor.charge(valid(testCards.insufficientFunds), noFaults, never)).toEqual({ captured: false, reason: declineReasons.insufficientFunds });
    expect(await processor.charge(valid("5555555555554444"), noFaults, never)).toEqual({ captured: true });
  });

  test("a charge fails as unavailable when the random draw is below the failure rate, and only then", async () => {
    let draw = 0;
    const processor = new SimulatedProcessor({ random: () => draw, now: () => now });
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

  test("an expired card is refused at vaulting, naming the field", () => {
    const processor = new SimulatedProcessor({ now: () => now });
    const err = (() => {
      try {
        return processor.vault({ digits: testCards.success, last4: "4242", expiryMonth: 5, expiryYear: 2030 });
      } catch (e) {
        return e;
      }
    })();
    expect((err as InvalidArgumentError).field).toBe("card.expiry_month");
  });

  test("a card that expired after it was vaulted is declined as expired, not an error", async () => {
    const vaulted = new SimulatedProcessor({ now: () => now }).vault({ digits: testCards.success, last4: "4242", expiryMonth: 6, expiryYear: 2030 });
    const nextMonth = new SimulatedProcessor({ now: () => new Date("2030-07-01T00:00:00Z") });
    expect(await nextMonth.charge(vaulted, { failureRate: 0, addedLatencyMs: 0 }, never)).toEqual({ captured: false, reason: declineReasons.expired });
  });

  test("the added latency stops as soon as the caller's signal aborts", async () => {
    const processor = new SimulatedProcessor({ now: () => now });
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 30);
    const started = performance.now();
    const outcome = await processor
      .charge(valid(testCards.success), { failureRate: 0, addedLatencyMs: 10_000 }, controller.signal)
      .catch((err: unknown) => err);
    expect(outcome).toBeInstanceOf(AbortedError);
    expect(performance.now() - started).toBeLessThan(1_000);
    expect(
      await processor.charge(valid(testCards.success), { failureRate: 0, addedLatencyMs: 0 }, controller.signal).catch((err: unknown) => err),
    ).toBeInstanceOf(AbortedError);
  });
});
