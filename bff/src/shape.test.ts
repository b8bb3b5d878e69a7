import { describe, expect, test } from "bun:test";
import { create } from "@bufbuild/protobuf";
import { MoneySchema } from "@bazaar/proto/bazaar/common/v1/money_pb";
import { priceView } from "./shape.ts";

describe("priceView", () => {
  test("formats minor units without floating-point drift", () => {
    expect(priceView(create(MoneySchema, { currencyCode: "USD", amountMinor: 1999n }))).toEqual({ currency: "USD", amountMinor: 1999, display: "$19.99" });
    expect(priceView(create(MoneySchema, { currencyCode: "USD", amountMinor: 10n })).display).toBe("$0.10");
    expect(priceView(create(MoneySchema, { currencyCode: "USD", amountMinor: 123456789n })).display).toBe("$1,234,567.89");
  });

  test("respects currencies with no minor unit", () => {
    expect(priceView(create(MoneySchema, { currencyCode: "JPY", amountMinor: 1500n })).display).toBe("¥1,500");
  });
});
