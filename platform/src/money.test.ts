import { describe, expect, test } from "bun:test";
import { formatMoney } from "./money.ts";

const money = (amountMinor: bigint | number, currencyCode = "USD") => ({ currencyCode, amountMinor });

describe("formatMoney", () => {
  test("formats minor units exactly, in the currency's own digits", () => {
    expect(formatMoney(money(4250n))).toBe("$42.50");
    expect(formatMoney(money(5n))).toBe("$0.05");
    expect(formatMoney(money(0n))).toBe("$0.00");
    expect(formatMoney(money(-1205n))).toBe("-$12.05");
    expect(formatMoney(money(900_719_925_474_099_312n))).toBe("$9,007,199,254,740,993.12");
    expect(formatMoney(money(1200n, "JPY"))).toBe("¥1,200");
    expect(formatMoney(money(1999n, "eur"))).toBe("€19.99");
  });

  test("takes minor units as a number too", () => {
    expect(formatMoney(money(1450))).toBe("$14.50");
  });

  test("shows an unknown currency code after the number, without control characters", () => {
    expect(formatMoney(money(1200n, "X$"))).toBe("12.00 X$");
    expect(formatMoney(money(1200n, "X\u0007Y"))).toBe("12.00 XY");
  });
});
