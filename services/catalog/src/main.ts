import { events } from "@bazaar/platform/messaging/events";
import { on } from "@bazaar/platform/messaging/broker";
import { startService } from "@bazaar/platform/service";
import { CatalogService } from "@bazaar/proto/bazaar/catalog/v1/catalog_pb";
import * as schema from "./db/schema.ts";
import { env } from "./env.ts";
import { productCodec, ProductStore } from "./products.ts";
import { catalogAccess, catalogHandlers } from "./rpc.ts";
import { seedCatalog } from "./seed.ts";

const service = startService("catalog", env);
const database = await service.openDatabase({ schema });
if (env.SEED_DEMO_DATA) await seedCatalog(database);
// Redis is the catalog's cache only: without it, reads go to Postgres.
const redis = await service.connectRedis({ required: false });
const broker = await service.connectBroker();
const relay = await service.useOutbox(database);
const cache = service.cache(redis, { name: "product", ttlSeconds: env.PRODUCT_CACHE_TTL_SECONDS, codec: productCodec });
const store = new ProductStore(database, cache, relay);
// Every replica shares the Redis cache, so one of them dropping the changed product is enough.
await broker.consume({ queue: "catalog.product-cache", handlers: [on(events.productUpdated, (e) => store.forget([e.productId]))] });
service.addGrpc(CatalogService, catalogHandlers(store), catalogAccess);
await service.listen();
