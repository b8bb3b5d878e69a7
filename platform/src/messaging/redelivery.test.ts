import { describe, expect, test } from "bun:test";
import { defaultRetryPolicy, retryDelayMs, retryPolicy } from "./redelivery.ts";

describe("retry delays", () => {
  test("double from the initial delay up to the cap", () => {
    const policy = retryPolicy({ attempts: 8, initialDelayMs: 500, maxDelayMs: 4_000 });
    const middle = () => 0.5; // no jitter: the nominal delay
    expect([1, 2, 3, 4, 5, 6, 7].map((failed) => retryDelayMs(policy, failed, middle))).toEqual([500, 1_000, 2_000, 4_000, 4_000, 4_000, 4_000]);
  });

  test("vary by at most a fifth either way", () => {
    const policy = retryPolicy({ initialDelayMs: 1_000, maxDelayMs: 1_000 });
    expect(retryDelayMs(policy, 1, () => 0)).toBe(800);
    expect(retryDelayMs(policy, 1, () => 0.999_999)).toBe(1_200);
  });

  test("by default, 8 attempts spread over about four minutes", () => {
    const waits = Array.from({ length: defaultRetryPolicy.attempts - 1 }, (_, i) => retryDelayMs(defaultRetryPolicy, i + 1, () => 0.5));
    expect(waits).toEqual([2_000, 4_000, 8_000, 16_000, 32_000, 64_000, 120_000]);
    expect(waits.reduce((a, b) => a + b, 0) / 60_000).toBeCloseTo(4.1, 1);
  });

  test("a policy that cannot work is refused with what to fix", () => {
    expect(() => retryPolicy({ attempts: 0 })).toThrow("retry attempts must be a whole number from 1 to 50, got 0");
    expect(() => retryPolicy({ initialDelayMs: 1_000, maxDelayMs: 10 })).toThrow("maxDelayMs at least initialDelayMs");
  });
});
