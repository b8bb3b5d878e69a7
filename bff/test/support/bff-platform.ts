import type { Hono } from "hono";
import { type RedisConnection, connectRedis } from "@bazaar/platform/cache";
import { Broker } from "@bazaar/platform/messaging/broker";
import { ensureVhost } from "@bazaar/platform/messaging/vhost";
import { developmentClientSecret } from "@bazaar/platform/env";
import { testEnv, testRedisPrefix } from "@bazaar/testkit/fixtures";
import type { ServiceName } from "@bazaar/platform/service-catalog";
import { type AppOptions, createApp, type Upstreams } from "../../src/app.ts";
import { CartCounts } from "../../src/cart-counts.ts";
import { LiveOrders } from "../../src/live-orders.ts";
import { followOrderEvents, orderEventListener } from "../../src/order-events.ts";
import { followCatalogEvents } from "../../src/catalog-events.ts";
import { ProductPageModel } from "../../src/product-page-model.ts";
import { connectUpstreams } from "../../src/upstreams/connect.ts";
import { startTestPlatform, type TestPlatform } from "@bazaar/testkit/test-platform";

/** One BFF "replica": its app, its clients, its live-order feed, its product page model. */
export interface BffReplica {
  app: Hono;
  upstreams: Upstreams;
  live: LiveOrders;
  /** Its products and stock, fed by catalog and stock events as in main.ts. */
  productPage: ProductPageModel;
  /** Its RabbitMQ connection, on which it follows order events. */
  broker: Broker;
  /** The name of its own order-events queue on the broker. */
  liveQueue: string;
}

/**
 * Every service as a real process (@bazaar/testkit/test-platform), and BFF apps on top of them
 * built by createApp() with real clients, a Redis prefix of this run's own and consumers of
 * the platform's order, product and stock events; called with app.request().
 */
export interface BffTestPlatform {
  platform: TestPlatform;
  redis: RedisConnection;
  /** The platform's RabbitMQ URL (its vhost). */
  amqpUrl: string;
  /** The first replica. */
  bff: BffReplica;
  /** Starts another replica sharing Redis and the broker (or with some clients replaced). */
  replica(options?: Partial<AppOptions> & { upstreams?: Partial<Upstreams> }): Promise<BffReplica>;
  /** Clients of the platform's services at their addresses (for replacing one of them). */
  upstreamsAt(overrides?: Partial<Record<ServiceName, string>>): Upstreams;
  cleanup(): Promise<void>;
}

/**
 * The BFF's clients of a test platform's services (`overrides` replaces an address, e.g. with
 * one nothing listens on), signing in to identity as the development client "bff".
 */
export function platformUpstreams(platform: TestPlatform, overrides: Partial<Record<ServiceName, string>> = {}): Upstreams {
  const at = (name: ServiceName) => overrides[name] ?? platform.address(name);
  return connectUpstreams({
    IDENTITY_ADDR: at("identity"),
    // The test platform's identity knows the development clients, the BFF's among them.
    OAUTH_TOKEN_URL: `${platform.httpUrl("identity")}/oauth2/token`,
    OAUTH_CLIENT_ID: "bff",
    OAUTH_CLIENT_SECRET: developmentClientSecret("bff"),
    CATALOG_ADDR: at("catalog"),
    INVENTORY_ADDR: at("inventory"),
    CART_ADDR: at("cart"),
    ORDERS_ADDR: at("orders"),
    PAYMENTS_ADDR: at("payments"),
    NOTIFICATIONS_ADDR: at("notifications"),
    UPSTREAM_TIMEOUT_MS: 5_000,
  });
}

export async function startBffTestPlatform(env: Parameters<typeof startTestPlatform>[0] = {}, appOptions: Partial<AppOptions> = {}): Promise<BffTestPlatform> {
  const platform = await startTestPlatform(env);
  const prefix = testRedisPrefix();
  const replicas: BffReplica[] = [];
  let redis: RedisConnection | undefined;
  const upstreamsAt = (overrides: Partial<Record<ServiceName, string>> = {}) => platformUpstreams(platform, overrides);
  const cleanup = async () => {
    for (const r of replicas) {
      await r.broker.close();
      for (const client of Object.values(r.upstreams)) client.close();
    }
    await prefix.clear().catch(() => {});
    await redis?.close();
    await platform.cleanup();
  };
  try {
    redis = await connectRedis(testEnv.REDIS_URL, prefix.prefix);
    const amqpUrl = await ensureVhost(testEnv.AMQP_URL, platform.vhost);
    const replica = async (options: Partial<AppOptions> & { upstreams?: Partial<Upstreams> } = {}): Promise<BffReplica> => {
      const upstreams = { ...upstreamsAt(), ...options.upstreams };
      const live = new LiveOrders(upstreams.orders);
      const broker = await Broker.connect(amqpUrl, { service: "bff" });
      const cartCounts = options.cartCounts ?? appOptions.cartCounts ?? new CartCounts(redis);
      const liveQueue = await followOrderEvents(broker, orderEventListener(live, cartCounts));
      const productPage = new ProductPageModel(upstreams.catalog, upstreams.inventory, { isLive: () => broker.connected });
      await followCatalogEvents(broker, productPage);
      const app = createApp({ redis, live, productPage, cartCounts, ...appOptions, ...options, upstreams });
      const r = { app, upstreams, live, productPage, broker, liveQueue };
      replicas.push(r);
      return r;
    };
    const bff = await replica();
    return { platform, redis, amqpUrl, bff, replica, upstreamsAt, cleanup };
  } catch (err) {
    await cleanup();
    throw err;
  }
}
