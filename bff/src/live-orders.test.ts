import { describe, expect, test } from "bun:test";
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { OrderSchema, OrderStatus } from "@bazaar/proto/bazaar/orders/v1/orders_pb";
import { LiveOrders, type LiveUpdate, type OrderStatusEvent } from "./live-orders.ts";
import type { OrdersClient } from "./upstreams/orders.ts";

const userId = "u1";
const now = Date.now();

function event(n: number, change: Partial<OrderStatusEvent> = {}): OrderStatusEvent {
  return { messageId: `m${n}`, orderId: "o1", userId, status: "PENDING", cancelReason: "", occurredAt: now - 60_000 + n * 1000, ...change };
}

function fakeOrders(): { client: OrdersClient; calls: () => number } {
  let calls = 0;
  const order = create(OrderSchema, {
    id: "o1",
    status: OrderStatus.CONFIRMED,
    total: { currencyCode: "USD", amountMinor: 500n },
    createTime: timestampFromDate(new Date(now)),
    updateTime: timestampFromDate(new Date(now)),
  });
  const client = {
    getOrder: async () => {
      calls++;
      return { order };
    },
  } as unknown as OrdersClient;
  return { client, calls: () => calls };
}

describe("LiveOrders", () => {
  test("hands each event once to the user's streams, in time order, ignoring redeliveries", () => {
    const live = new LiveOrders(fakeOrders().client);
    const got: LiveUpdate[] = [];
    live.subscribe(userId, { deliver: (u) => got.push(u) });
    const other: LiveUpdate[] = [];
    live.subscribe("u2", { deliver: (u) => other.push(u) });
    live.record(event(1));
    live.record(event(1));
    live.record(event(2, { status: "CONFIRMED" }));
    expect(got.map((u) => u.event.messageId)).toEqual(["m1", "m2"]);
    expect(other).toEqual([]);
  });

  test("replays what came after Last-Event-ID, including a late event that sorts before newer ones; no id, no replay", () => {
    const live = new LiveOrders(fakeOrders().client);
    live.record(event(1));
    live.record(event(3));
    live.record(event(2));
    const ids = (last?: string) => live.subscribe(userId, { deliver: () => {} }, last).missed.map((u) => u.event.messageId);
    const first = `${event(1).occurredAt}-m1`;
    expect(ids(first)).toEqual(["m2", "m3"]);
    expect(ids(`${event(3).occurredAt}-m3`)).toEqual([]);
    expect(ids()).toEqual([]);
    expect(ids("garbage")).toEqual([]);
    // An id this replica never saw (it came from another one, or was pruned) still places the reconnect in time.
    expect(ids(`${event(2).occurredAt - 1}-unknown`)).toEqual(["m2", "m3"]);
  });

  test("keeps only the replay window and a bounded number per user", () => {
    const live = new LiveOrders(fakeOrders().client, { replayWindowMs: 30_000, perUserLimit: 2 });
    live.record(event(1)); // 59 s ago: outside the window
    for (let n = 40; n < 45; n++) live.record(event(n));
    const kept = live.subscribe(userId, { deliver: () => {} }, "0-start").missed.map((u) => u.event.messageId);
    expect(kept).toEqual(["m43", "m44"]);
  });

  test("a view shows the event's status over the order's lines, with one lookup per order", async () => {
    const orders = fakeOrders();
    const live = new LiveOrders(orders.client);
    const updates: LiveUpdate[] = [];
    live.subscribe(userId, { deliver: (u) => updates.push(u) });
    live.record(event(1));
    live.record(event(2, { status: "CANCELLED", cancelReason: "Your card was declined." }));
    const [pending, cancelled] = await Promise.all(updates.map((u) => live.view(u, {})));
    expect(pending).toMatchObject({ id: "o1", status: "PENDING", cancelReason: null, total: { amountMinor: 500 } });
    expect(cancelled).toMatchObject({ status: "CANCELLED", cancelReason: "Your card was declined." });
    expect(cancelled!.updatedAt).toBe(new Date(event(2).occurredAt).toISOString());
    expect(orders.calls()).toBe(1);
  });
});
