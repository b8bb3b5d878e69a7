import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import { type Broker, type EventHandler, on } from "@bazaar/platform/messaging/broker";
import { type EventType, events } from "@bazaar/platform/messaging/events";
import { handleOnce } from "@bazaar/platform/messaging/inbox";
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
 * makes one notification.
 */
export function notificationHandlers(database: NotificationsDatabase): EventHandler[] {
  const notify = <S extends DescMessage>(event: EventType<S>, draft: (message: MessageShape<S>) => NotificationDraft): EventHandler =>
    on(event, (message, delivery) => {
      const n = draft(message);
      return handleOnce(database.db, eventsQueue, delivery.messageId, async (tx) => {
        await tx.insert(notifications).values({ ...n, sourceMessageId: delivery.messageId });
      });
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
