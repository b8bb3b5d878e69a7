import type { MessageShape } from "@bufbuild/protobuf";
import { type Timestamp, timestampDate } from "@bufbuild/protobuf/wkt";
import { type Broker, type Delivery, on } from "@bazaar/platform/messaging/broker";
import { events } from "@bazaar/platform/messaging/events";
import type { OrderStatusName } from "./shape.ts";
import type { LiveOrders, OrderStatusEvent } from "./live-orders.ts";
import type { CartCounts } from "./cart-counts.ts";

type OrderEvent = MessageShape<(typeof events)["orderPlaced" | "orderConfirmed" | "orderCancelled"]["schema"]>;

/**
 * Turns one order event into the status change it reports. The message id becomes part of the
 * SSE id (see LiveOrders), so one that could not be read back from Last-Event-ID is refused.
 */
function statusChange(status: OrderStatusName, e: OrderEvent, delivery: Delivery, cancelReason = ""): OrderStatusEvent {
  const { messageId, routingKey } = delivery;
  if (!/^[\w-]{1,64}$/.test(messageId)) throw new Error(`unexpected message (routing key ${routingKey}, message id ${JSON.stringify(messageId)})`);
  return { messageId, orderId: e.orderId, userId: e.userId, status, cancelReason, occurredAt: occurredAt(e.occurTime) };
}

function occurredAt(t: Timestamp | undefined): number {
  return t ? timestampDate(t).getTime() : Date.now();
}

/**
 * Follows order events for live order status. Unlike the services' consumers (one durable
 * queue shared by all replicas, so each event is handled once), every BFF replica needs every
 * event — the user's stream may be open on any of them — so each process has a fan-out
 * consumer of its own (see FanOutSpec). Messages it misses while disconnected are not
 * redelivered: a live view is a nicety, the orders service is the truth, and the browser
 * reloads it on reconnect. Returns the queue's name.
 */
export function followOrderEvents(broker: Broker, onEvent: (event: OrderStatusEvent) => void): Promise<string> {
  return broker.fanOut({
    name: "bff.live-orders",
    handlers: [
      on(events.orderPlaced, async (e, d) => onEvent(statusChange("PENDING", e, d))),
      on(events.orderConfirmed, async (e, d) => onEvent(statusChange("CONFIRMED", e, d))),
      on(events.orderCancelled, async (e, d) => onEvent(statusChange("CANCELLED", e, d, e.reason))),
    ],
    // Bounded, should this process fall behind: old live updates are worth nothing.
    messageTtlMs: 60_000,
    maxLength: 10_000,
  });
}

/**
 * What a BFF replica does with each order status change: hands it to the live order streams,
 * and, for a confirmed order, holds the user's kept cart count while the cart service empties
 * the cart (see CartCounts).
 */
export function orderEventListener(live: Pick<LiveOrders, "record">, cartCounts: Pick<CartCounts, "orderConfirmed">): (event: OrderStatusEvent) => void {
  return (event) => {
    live.record(event);
    if (event.status === "CONFIRMED") void cartCounts.orderConfirmed(event.userId);
  };
}
