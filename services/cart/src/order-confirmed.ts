import { log } from "@bazaar/platform/log";
import { type EventHandler, on, PoisonMessageError } from "@bazaar/platform/messaging/broker";
import { events } from "@bazaar/platform/messaging/events";
import type { CartStore } from "./cart-store.ts";

/** The queue of the consumer that empties carts of confirmed orders. */
export const orderConfirmedQueue = "cart.order-confirmed";

/**
 * Empties the buyer's cart when their order is confirmed, once per message: the inbox marker
 * and the delete are one Redis script (see {@link CartStore.clearOnce}), so a redelivered
 * message, even after the buyer filled the cart again, finds the marker and changes nothing.
 * A Redis failure throws, and RabbitMQ redelivers the message.
 */
export function clearCartOnOrderConfirmed(store: CartStore): EventHandler {
  return on(events.orderConfirmed, async (event, delivery) => {
    if (!event.userId) throw new PoisonMessageError(`OrderConfirmed ${event.orderId || "(no order id)"} names no user`);
    const outcome = await store.clearOnce(event.userId, orderConfirmedQueue, delivery.messageId);
    if (outcome === "duplicate") return "duplicate";
    log.info("emptied the cart of a confirmed order", { userId: event.userId, orderId: event.orderId, messageId: delivery.messageId });
  });
}
