import { startService } from "@bazaar/platform/service";
import { CatalogService } from "@bazaar/proto/bazaar/catalog/v1/catalog_pb";
import * as schema from "./db/schema.ts";
import { env } from "./env.ts";
import { productCodec, ProductStore } from "./products.ts";
import { catalogHandlers } from "./rpc.ts";
import { seedCatalog } from "./seed.ts";

const service = startService("catalog", env);
const database = await service.openDatabase({ url: env.DATABASE_URL, schema, migrationsFolder: `${import.meta.dir}/../drizzle` });
if (env.SEED_DEMO_DATA) await seedCatalog(database);
const redis = await service.connectRedis(env.REDIS_URL, env.REDIS_KEY_PREFIX);
const cache = service.cache(redis, { name: "product", ttlSeconds: env.PRODUCT_CACHE_TTL_SECONDS, codec: productCodec });
service.addGrpc(CatalogService, catalogHandlers(new ProductStore(database, cache)));
await service.listen();
