import { type Broker, on, PoisonMessageError } from "@bazaar/platform/messaging/broker";
import { events } from "@bazaar/platform/messaging/events";
import { handleOnce } from "@bazaar/platform/messaging/inbox";
import type { OutboxSignal } from "@bazaar/platform/messaging/outbox";
import type { InventoryDatabase, InventoryStore } from "./inventory-store.ts";
import { uuidPattern } from "@bazaar/platform/ids";

/** The queue inventory learns of new products on. */
export const productsQueue = "inventory.products";

/**
 * Gives every product the catalog announces as new a stock row (no units, or demo units), once
 * per message however often it is delivered. Changes to existing products do not touch stock.
 */
export async function consumeProductAnnouncements(broker: Broker, database: InventoryDatabase, store: InventoryStore, outbox: OutboxSignal): Promise<void> {
  await broker.consume({
    queue: productsQueue,
    handlers: [
      on(events.productUpdated, async (message, delivery) => {
        if (!message.created) return;
        if (!uuidPattern.test(message.productId)) throw new PoisonMessageError(`product id ${JSON.stringify(message.productId.slice(0, 64))} is not a UUID`);
        let created = 0;
        const result = await handleOnce(database.db, productsQueue, delivery.messageId, async (tx) => {
          created = (await store.addProducts(tx, [message.productId.toLowerCase()])).length;
        });
        if (created) outbox.wake();
        return result;
      }),
    ],
  });
}
