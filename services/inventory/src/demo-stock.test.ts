import { describe, expect, test } from "bun:test";
import { demoQuantity } from "./demo-stock.ts";

describe("demo stock", () => {
  const ids = Array.from({ length: 1200 }, (_, i) => `00000000-0000-4000-8000-${i.toString(16).padStart(12, "0")}`);

  test("is the same for the same product every time, whatever the case of its id", () => {
    const id = "6cf6f00c-86a0-4044-91ee-8941dc0fda34";
    expect(demoQuantity(id)).toBe(demoQuantity(id));
    expect(demoQuantity(id.toUpperCase())).toBe(demoQuantity(id));
  });

  test("is 5 to 60 units, except about one product in twelve that has only 1 or 2", () => {
    const quantities = ids.map(demoQuantity);
    expect(quantities.every((q) => (q >= 5 && q <= 60) || q === 1 || q === 2)).toBe(true);
    const scarce = quantities.filter((q) => q <= 2).length;
    // 1200 / 12 = 100 expected; a fair hash lands well within ±50 of it.
    expect(scarce).toBeGreaterThan(50);
    expect(scarce).toBeLessThan(150);
    expect(new Set(quantities.filter((q) => q >= 5)).size).toBeGreaterThan(40);
    expect(quantities).toContain(1);
    expect(quantities).toContain(2);
  });
});
