import { describe, expect, test } from "bun:test";
import { create } from "@bufbuild/protobuf";
import { PoisonMessageError } from "@bazaar/platform/messaging/broker";
import { MoneySchema } from "@bazaar/proto/bazaar/common/v1/money_pb";
import { OrderCancelledSchema, OrderPlacedSchema, PaymentFailedSchema, UserRegisteredSchema } from "@bazaar/proto/bazaar/events/v1/events_pb";
import { orderCancelledNotice, orderPlacedNotice, paymentFailedNotice, welcomeNotice } from "./notices.ts";

const money = (amountMinor: bigint, currencyCode = "USD") => create(MoneySchema, { currencyCode, amountMinor });
const userId = "0b6f3a8e-5d43-4c1f-9a57-1f0a3f2b9c11";
const orderId = "1A2B3C4D-0000-4000-8000-000000000001";

describe("notice texts", () => {
  test("welcome by name, or without one", () => {
    expect(welcomeNotice(create(UserRegisteredSchema, { userId, displayName: "  Ada\nLovelace " })).title).toBe("Welcome to Bazaar, Ada Lovelace!");
    expect(welcomeNotice(create(UserRegisteredSchema, { userId, displayName: "" })).title).toBe("Welcome to Bazaar!");
  });

  test("an order placed names the short order id, the first lines and the total", () => {
    const lines = ["Mug", "Kettle", "Board", "Spoon", "Towel"].map((name, i) => ({ productId: userId, name, quantity: i + 1 }));
    const n = orderPlacedNotice(create(OrderPlacedSchema, { orderId, userId, total: money(4250n), lines }));
    expect(n).toMatchObject({ kind: "order.placed", title: "Order 1a2b3c4d placed", orderId: orderId.toLowerCase(), userId });
    expect(n.body).toBe(
      "We received your order 1a2b3c4d (1 × Mug, 2 × Kettle, 3 × Board and 2 more) for $42.50. We will let you know as soon as it is confirmed.",
    );
  });

  test("reasons end the sentence once", () => {
    expect(orderCancelledNotice(create(OrderCancelledSchema, { orderId, userId, reason: "Out of stock." })).body).toBe(
      "Your order 1a2b3c4d was cancelled. Reason: Out of stock.",
    );
    expect(orderCancelledNotice(create(OrderCancelledSchema, { orderId, userId })).body).toBe("Your order 1a2b3c4d was cancelled.");
    expect(paymentFailedNotice(create(PaymentFailedSchema, { orderId, userId, amount: money(999n), reason: "card declined" })).body).toBe(
      "We could not charge $9.99 for order 1a2b3c4d. Reason: card declined.",
    );
  });

  test("an event without a valid user or order id is poison", () => {
    expect(() => welcomeNotice(create(UserRegisteredSchema, { userId: "" }))).toThrow(PoisonMessageError);
    expect(() => orderCancelledNotice(create(OrderCancelledSchema, { orderId, userId: "42" }))).toThrow("user_id: must be a UUID");
    expect(() => orderCancelledNotice(create(OrderCancelledSchema, { orderId: "", userId }))).toThrow("order_id: must be a UUID");
  });
});
