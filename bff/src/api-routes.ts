import { Hono } from "hono";
import type { ApplyGlobalResponse } from "hono/client";
import type { ClientErrorStatusCode, ServerErrorStatusCode } from "hono/utils/http-status";
import type { RedisConnection } from "@bazaar/platform/cache";
import type { AppEnv } from "./auth.ts";
import type { CartCounts } from "./cart-counts.ts";
import type { ApiError } from "./errors.ts";
import type { LiveOrders } from "./live-orders.ts";
import type { ProductPageModel } from "./product-page-model.ts";
import { adminRoutes } from "./routes/admin.ts";
import { authRoutes, sessionRoutes } from "./routes/auth.ts";
import { cartRoutes } from "./routes/cart.ts";
import { checkoutRoutes } from "./routes/checkout.ts";
import { type EventStreamOptions, eventRoutes } from "./routes/events.ts";
import { notificationRoutes } from "./routes/notifications.ts";
import { orderRoutes } from "./routes/orders.ts";
import { categoryRoutes, productRoutes } from "./routes/products.ts";
import type { CartClient } from "./upstreams/cart.ts";
import type { CatalogClient } from "./upstreams/catalog.ts";
import type { IdentityClient } from "./upstreams/identity.ts";
import type { InventoryClient } from "./upstreams/inventory.ts";
import type { NotificationsClient } from "./upstreams/notifications.ts";
import type { OrdersClient } from "./upstreams/orders.ts";
import type { PaymentsClient } from "./upstreams/payments.ts";

/** What the BFF talks to. */
export interface Upstreams {
  identity: IdentityClient;
  catalog: CatalogClient;
  inventory: InventoryClient;
  cart: CartClient;
  orders: OrdersClient;
  payments: PaymentsClient;
  notifications: NotificationsClient;
}

/** What the JSON API's routes are built from (see AppOptions for each). */
export interface ApiDependencies {
  upstreams: Upstreams;
  redis: RedisConnection | undefined;
  live: LiveOrders;
  productPage: ProductPageModel;
  cartCounts: CartCounts;
  isHealthy: () => boolean;
  secureCookies: boolean;
  checkoutTimeoutMs: number;
  events: EventStreamOptions | undefined;
}

/**
 * The JSON API, one sub-app per resource, chained so that its type carries every route's
 * path, input and answer: the web UI's client (`hc<ApiRoutes>("/api")`) is typed from it.
 * Mounted under /api by createApp, after the middleware every /api request passes.
 */
export function apiRoutes({ upstreams, redis, live, productPage, cartCounts, isHealthy, secureCookies, checkoutTimeoutMs, events }: ApiDependencies) {
  return new Hono<AppEnv>()
    .route("/session", sessionRoutes(secureCookies))
    .route("/auth", authRoutes(upstreams.identity, secureCookies))
    .route("/products", productRoutes(upstreams.catalog, productPage, upstreams.cart, cartCounts))
    .route("/categories", categoryRoutes(upstreams.catalog))
    .route("/cart", cartRoutes(upstreams.cart, cartCounts))
    .route("/checkout", checkoutRoutes(upstreams, redis, checkoutTimeoutMs))
    .route("/orders", orderRoutes(upstreams.orders))
    .route("/events", eventRoutes(live, isHealthy, events))
    .route("/notifications", notificationRoutes(upstreams.notifications))
    .route("/admin", adminRoutes(upstreams.catalog, upstreams.inventory, upstreams.orders, productPage));
}

/**
 * The API's routes as a client sees them: besides what each handler answers, any route may
 * answer an error status with an {@link ApiError} body (the middleware's 401/403/413, a
 * validator's 400, errorResponse's mapping of gRPC statuses, Hono's own 4xx).
 */
export type ApiRoutes = ApplyGlobalResponse<ReturnType<typeof apiRoutes>, { [S in ClientErrorStatusCode | ServerErrorStatusCode]: { json: ApiError } }>;
