import { startService } from "@bazaar/platform/service";
import { createApp } from "./app.ts";
import { CartCounts } from "./cart-counts.ts";
import { env } from "./env.ts";
import { LiveOrders } from "./live-orders.ts";
import { followOrderEvents, orderEventListener } from "./order-events.ts";
import { followCatalogEvents } from "./catalog-events.ts";
import { ProductPageModel } from "./product-page-model.ts";
import { connectUpstreams } from "./upstreams/connect.ts";
import { buildWeb } from "./web.ts";

// The BFF checks its own cookie sessions; it verifies no bearer tokens.
const host = startService("bff", env, { auth: false });
const upstreams = connectUpstreams(env);
host.onShutdown("service clients", async () => {
  for (const client of Object.values(upstreams)) client.close();
});
const redis = await host.connectRedis();
const broker = await host.connectBroker();
const live = new LiveOrders(upstreams.orders);
const cartCounts = new CartCounts(redis);
await followOrderEvents(broker, orderEventListener(live, cartCounts));
const productPage = new ProductPageModel(upstreams.catalog, upstreams.inventory, {
  maxEntries: env.PRODUCT_PAGE_MAX_ENTRIES,
  maxAgeMs: env.PRODUCT_PAGE_MAX_AGE_MS,
  isLive: () => broker.connected,
});
await followCatalogEvents(broker, productPage);
host.useHttpApp(
  createApp({
    upstreams,
    redis,
    live,
    productPage,
    cartCounts,
    sessionTtlHours: env.SESSION_TTL_HOURS,
    secureCookies: env.COOKIE_SECURE,
    trustedProxies: env.TRUSTED_PROXIES,
    checkoutTimeoutMs: env.CHECKOUT_TIMEOUT_MS,
    events: { maxPerSession: env.EVENT_STREAMS_PER_SESSION, maxOpen: env.EVENT_STREAMS_MAX },
    web: await buildWeb(),
    isHealthy: host.isServing,
    dependencies: host.readiness.report,
  }),
);
await host.listen();
