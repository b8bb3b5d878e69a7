import { type Broker, on } from "@bazaar/platform/messaging/broker";
import { events } from "@bazaar/platform/messaging/events";
import { log } from "@bazaar/platform/log";
import type { ProductPageModel } from "./product-page-model.ts";

// Apart from the model: the broker is server-side code (Bun), and the model is part of the app
// whose types the web UI's build checks.

/**
 * Keeps `model` current from a fan-out consumer of its own (every replica needs every event,
 * see FanOutSpec): while the broker is disconnected the model is bypassed, and on every
 * (re)connection it is dropped, since the queue of the old connection, and whatever it held,
 * went with it. Returns the queue's name.
 */
export async function followCatalogEvents(broker: Broker, model: ProductPageModel): Promise<string> {
  broker.onConnected(() => {
    log.info("product page model dropped: catalog and stock events may have been missed");
    model.clear();
  });
  return broker.fanOut({
    name: "bff.product-page",
    handlers: [on(events.productUpdated, async (e) => model.productUpdated(e)), on(events.stockChanged, async (e) => model.stockChanged(e))],
    // Bounded, should this process fall behind; a dropped event leaves an entry stale for at most maxAgeMs.
    messageTtlMs: 60_000,
    maxLength: 100_000,
  });
}
