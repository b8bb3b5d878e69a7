import { createClient } from "@bazaar/platform/grpc/client";
import { startService } from "@bazaar/platform/service";
import { CartService } from "@bazaar/proto/bazaar/cart/v1/cart_pb";
import { CatalogService } from "@bazaar/proto/bazaar/catalog/v1/catalog_pb";
import { CartStore } from "./cart-store.ts";
import { Carts } from "./carts.ts";
import { env } from "./env.ts";
import { clearCartOnOrderConfirmed, orderConfirmedQueue } from "./order-confirmed.ts";
import { cartAccess, cartHandlers } from "./rpc.ts";

const service = startService("cart", env);
const redis = await service.connectRedis();
const broker = await service.connectBroker();
// Public catalog reads: no token. A short deadline, so a hung catalog fails a cart call fast.
const catalog = createClient(CatalogService, env.CATALOG_ADDR, { defaultTimeoutMs: 2_000 });
service.onShutdown("catalog client", async () => catalog.close());
const store = new CartStore(redis, { ttlSeconds: env.CART_TTL_DAYS * 86_400 });
await broker.consume({ queue: orderConfirmedQueue, handlers: [clearCartOnOrderConfirmed(store)] });
service.addGrpc(CartService, cartHandlers(new Carts(store, catalog, { currency: env.CART_CURRENCY })), cartAccess);
await service.listen();
