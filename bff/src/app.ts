import { status } from "@grpc/grpc-js";
import type { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import type { RedisConnection } from "@bazaar/platform/cache";
import { RpcError } from "@bazaar/platform/errors";
import { createHttpApp } from "@bazaar/platform/http";
import type { DependencyState } from "@bazaar/platform/readiness";
import { csrfProtection, sessionMiddleware } from "./auth.ts";
import { CartCounts } from "./cart-counts.ts";
import { apiRoutes, type Upstreams } from "./api-routes.ts";
import { edgeRequest, securityHeaders, trustedProxies } from "./edge.ts";
import { apiError, errorResponse } from "./errors.ts";
import { LiveOrders } from "./live-orders.ts";
import { ProductPageModel } from "./product-page-model.ts";
import type { EventStreamOptions } from "./routes/events.ts";
import { SessionStore } from "./session-store.ts";
import type { WebBundle } from "./web.ts";
import { webRoutes } from "./web.ts";

/** What the BFF talks to (declared beside the API's routes, which are built from it). */
export type { Upstreams };

/** Options of {@link createApp}. */
export interface AppOptions {
  /**
   * The services' clients. One left out answers every call with UNAVAILABLE (a 503), as a
   * service that is down would: a test of the catalog pages needs only the catalog.
   */
  upstreams: Partial<Upstreams>;
  /** Sessions and checkout keys live here (under its prefix + "bff:"); without it, signing in is a 503. */
  redis?: RedisConnection;
  /** Live order status, fed by the order-events consumer; a quiet one when omitted. */
  live?: LiveOrders;
  /**
   * The product page's products and stock, fed by the catalog-events consumer; when omitted,
   * one that is never live, so every page asks the catalog and inventory.
   */
  productPage?: ProductPageModel;
  /**
   * The cart counts the product page shows, kept in `redis`; when omitted, one on `redis` that
   * no order-events consumer tells of confirmed orders (a count then shows the emptied cart
   * after its TTL).
   */
  cartCounts?: CartCounts;
  /** How long an unused session lives, in hours (default a week). */
  sessionTtlHours?: number;
  /** Refresh a user's access token when less than this is left (default 60 s; see SessionStore). */
  refreshMarginMs?: number;
  /** Mark cookies Secure even when the request came over plain http. */
  secureCookies?: boolean;
  /**
   * Proxies (addresses, CIDRs) whose X-Forwarded-Proto is believed: a request forwarded by one
   * over https gets Secure cookies. Default none.
   */
  trustedProxies?: readonly string[];
  /** Deadline of PlaceOrder (default 8 s). */
  checkoutTimeoutMs?: number;
  /** /api/events settings (ping interval etc.). */
  events?: EventStreamOptions;
  /** The built web UI; omitted in API-only tests. */
  web?: WebBundle;
  /** Whether the process is serving (false while it shuts down or Redis is down). */
  isHealthy?: () => boolean;
  /** The dependencies' states, for /readyz (the host's readiness report). */
  dependencies?: () => Record<string, DependencyState>;
}

/** A client of a service the app was not given: every call fails as if the service were down. */
function missing<T>(name: string): T {
  const fail = () => Promise.reject(new RpcError(status.UNAVAILABLE, `the BFF has no ${name} client`));
  return new Proxy({}, { get: (_, method) => (method === "close" ? () => {} : fail) }) as T;
}

/**
 * The BFF as a Hono app: the probes (/livez, /readyz, /healthz), the JSON API under /api, and the web UI. No /metrics: this
 * port is public, so the host serves them on METRICS_PORT (see ServiceHost.listen).
 * Every unsafe /api request passes the CSRF check; the session is loaded from Redis when a
 * route asks for it. Tests build it with their own upstreams and call it with `app.request()`.
 */
export function createApp(options: AppOptions): Hono {
  const { web, isHealthy = () => true } = options;
  const upstreams: Upstreams = {
    identity: options.upstreams.identity ?? missing("identity"),
    catalog: options.upstreams.catalog ?? missing("catalog"),
    inventory: options.upstreams.inventory ?? missing("inventory"),
    cart: options.upstreams.cart ?? missing("cart"),
    orders: options.upstreams.orders ?? missing("orders"),
    payments: options.upstreams.payments ?? missing("payments"),
    notifications: options.upstreams.notifications ?? missing("notifications"),
  };
  const secureCookies = options.secureCookies ?? false;
  const sessions = new SessionStore(options.redis, upstreams.identity, {
    ttlSeconds: Math.round((options.sessionTtlHours ?? 24 * 7) * 3600),
    refreshMarginMs: options.refreshMarginMs,
  });
  const live = options.live ?? new LiveOrders(upstreams.orders);
  const productPage = options.productPage ?? new ProductPageModel(upstreams.catalog, upstreams.inventory);
  const cartCounts = options.cartCounts ?? new CartCounts(options.redis);

  const app = createHttpApp(isHealthy, { metrics: false, dependencies: options.dependencies });
  app.use(securityHeaders, edgeRequest(trustedProxies(options.trustedProxies ?? [])));
  app.use(
    "/api/*",
    bodyLimit({ maxSize: 64 * 1024, onError: (c) => apiError(c, 413, "payload_too_large", "The request body is larger than 64 KiB.") }),
    csrfProtection,
    sessionMiddleware(sessions, secureCookies),
  );
  app.route(
    "/api",
    apiRoutes({
      upstreams,
      redis: options.redis,
      live,
      productPage,
      cartCounts,
      isHealthy,
      secureCookies,
      checkoutTimeoutMs: options.checkoutTimeoutMs ?? 8_000,
      events: options.events,
    }),
  );
  app.all("/api/*", (c) => c.json({ error: { code: "not_found", message: `no API route ${c.req.method} ${c.req.path}` } }, 404));
  // Said here, or the web UI's catch-all would answer the public /metrics with the shop's page.
  app.get("/metrics", (c) => c.notFound());
  if (web) app.route("/", webRoutes(web));
  app.onError(errorResponse);
  return app;
}
