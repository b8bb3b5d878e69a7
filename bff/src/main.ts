import { startService } from "@bazaar/platform/service";
import { createApp } from "./app.ts";
import { env } from "./env.ts";
import { LiveOrders } from "./live-orders.ts";
import { consumeOrderEvents } from "./order-events.ts";
import { connectUpstreams } from "./upstreams/connect.ts";
import { buildWeb } from "./web.ts";

const host = startService("bff", env);
const upstreams = connectUpstreams(env);
host.onShutdown("service clients", async () => Object.values(upstreams).forEach((client) => client.close()));
const redis = await host.connectRedis(env.REDIS_URL, env.REDIS_KEY_PREFIX);
const live = new LiveOrders(upstreams.orders);
const orderEvents = await consumeOrderEvents(env.AMQP_URL, live.record);
host.onShutdown("order events", () => orderEvents.close());
host.useHttpApp(
  createApp({
    upstreams,
    redis,
    live,
    sessionTtlHours: env.SESSION_TTL_HOURS,
    secureCookies: env.COOKIE_SECURE,
    checkoutTimeoutMs: env.CHECKOUT_TIMEOUT_MS,
    web: await buildWeb(),
    isHealthy: host.isServing,
  }),
);
await host.listen();
