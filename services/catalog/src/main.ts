import { events } from "@bazaar/platform/messaging/events";
import { on } from "@bazaar/platform/messaging/broker";
import { startService } from "@bazaar/platform/service";
import { CatalogService } from "@bazaar/proto/bazaar/catalog/v1/catalog_pb";
import * as schema from "./db/schema.ts";
import { env } from "./env.ts";
import { productCodec, ProductStore } from "./products.ts";
import { catalogAccess, catalogHandlers } from "./rpc.ts";
import { seedCatalog } from "./seed.ts";

const service = startService("catalog", env).useAuth({ jwksUrl: env.JWKS_URL, issuer: env.JWT_ISSUER, audience: env.JWT_AUDIENCE });
const database = await service.openDatabase({ url: env.DATABASE_URL, schema, migrationsFolder: `${import.meta.dir}/../drizzle` });
if (env.SEED_DEMO_DATA) await seedCatalog(database);
const redis = await service.connectRedis(env.REDIS_URL, env.REDIS_KEY_PREFIX);
const broker = await service.connectBroker(env.AMQP_URL);
const relay = service.startOutboxRelay(database.db, broker);
const cache = service.cache(redis, { name: "product", ttlSeconds: env.PRODUCT_CACHE_TTL_SECONDS, codec: productCodec });
const store = new ProductStore(database, cache, relay);
// Every replica shares the Redis cache, so one of them dropping the changed product is enough.
await broker.consume({ queue: "catalog.product-cache", handlers: [on(events.productUpdated, (e) => store.forget([e.productId]))] });
service.addGrpc(CatalogService, catalogHandlers(store), catalogAccess);
await service.listen();
