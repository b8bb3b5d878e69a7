import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import type { Broker, EventHandler } from "@bazaar/platform/messaging/broker";
import { type EventType, events } from "@bazaar/platform/messaging/events";
import { Inbox } from "@bazaar/platform/messaging/inbox";
import { notifications } from "./db/schema.ts";
import {
  type NotificationDraft,
  orderCancelledNotice,
  orderConfirmedNotice,
  orderPlacedNotice,
  paymentCapturedNotice,
  paymentFailedNotice,
  paymentRefundedNotice,
  welcomeNotice,
} from "./notices.ts";
import type { NotificationsDatabase } from "./notifications.ts";

/** The service's one queue; its dead-letter queue is "notifications.events.dlq". */
export const eventsQueue = "notifications.events";

/**
 * One handler per event a user hears about. Each turns the event into a notification (an
 * event without a valid user or order id is poison and goes to the DLQ) and inserts it with
 * the inbox row of the message in one transaction, so a redelivered or duplicated message
 * makes one notification. The messages in flight together share that transaction (an
 * {@link Inbox}): an order's three events are one commit under load, not three.
 */
export function notificationHandlers(database: NotificationsDatabase): EventHandler[] {
  const inbox = new Inbox(database.db, eventsQueue);
  const notify = <S extends DescMessage>(event: EventType<S>, draft: (message: MessageShape<S>) => NotificationDraft): EventHandler =>
    inbox.on(event, async (tx, message, delivery) => {
      await tx.insert(notifications).values({ ...draft(message), sourceMessageId: delivery.messageId });
    });
  return [
    notify(events.userRegistered, welcomeNotice),
    notify(events.orderPlaced, orderPlacedNotice),
    notify(events.orderConfirmed, orderConfirmedNotice),
    notify(events.orderCancelled, orderCancelledNotice),
    notify(events.paymentCaptured, paymentCapturedNotice),
    notify(events.paymentFailed, paymentFailedNotice),
    notify(events.paymentRefunded, paymentRefundedNotice),
  ];
}

/**
 * Consumes the events queue (declaring it, its DLQ and bindings) now and after every
 * reconnection. `handlers` defaults to {@link notificationHandlers}; tests wrap them.
 */
export async function consumeEvents(broker: Broker, database: NotificationsDatabase, handlers = notificationHandlers(database)): Promise<void> {
  await broker.consume({ queue: eventsQueue, handlers });
}
