import { createClient } from "@bazaar/platform/grpc/client";
import { startService } from "@bazaar/platform/service";
import { CatalogService } from "@bazaar/proto/bazaar/catalog/v1/catalog_pb";
import { InventoryService } from "@bazaar/proto/bazaar/inventory/v1/inventory_pb";
import { CatalogBackfill } from "./catalog-backfill.ts";
import * as schema from "./db/schema.ts";
import { env } from "./env.ts";
import { InventoryStore } from "./inventory-store.ts";
import { consumeProductAnnouncements } from "./product-events.ts";
import { ReservationSweeper } from "./reservation-sweeper.ts";
import { inventoryAccess, inventoryHandlers } from "./rpc.ts";

const service = startService("inventory", env);
const database = await service.openDatabase({ schema });
const broker = await service.connectBroker();
const relay = await service.useOutbox(database);
const store = new InventoryStore(database, { reservationTtlSeconds: env.RESERVATION_TTL_SECONDS, demoStock: env.SEED_DEMO_DATA }, relay);
const sweeper = new ReservationSweeper(store, env.RESERVATION_SWEEP_MS).start();
service.onShutdown("reservation sweeper", () => sweeper.stop());
await consumeProductAnnouncements(broker, database, store, relay);
// Only after the queue is bound: products announced before it existed come from the listing.
const catalog = createClient(CatalogService, env.CATALOG_ADDR);
const backfill = new CatalogBackfill(catalog, database, store, relay).start();
service.onShutdown("catalog backfill", async () => {
  await backfill.stop();
  catalog.close();
});
service.addGrpc(InventoryService, inventoryHandlers(store, backfill), inventoryAccess);
await service.listen();
