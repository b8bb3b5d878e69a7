import type { Upstreams } from "../app.ts";
import type { BffEnv } from "../env.ts";
import { createCartClient } from "./cart.ts";
import { createCatalogClient } from "./catalog.ts";
import { createIdentityClient } from "./identity.ts";
import { createInventoryClient } from "./inventory.ts";
import { createNotificationsClient } from "./notifications.ts";
import { createOrdersClient } from "./orders.ts";
import { createPaymentsClient } from "./payments.ts";

/** Clients of every service the BFF calls, at the configured addresses, with the configured deadline. */
export function connectUpstreams(
  env: Pick<
    BffEnv,
    | "IDENTITY_ADDR"
    | "OAUTH_TOKEN_URL"
    | "OAUTH_CLIENT_ID"
    | "OAUTH_CLIENT_SECRET"
    | "CATALOG_ADDR"
    | "INVENTORY_ADDR"
    | "CART_ADDR"
    | "ORDERS_ADDR"
    | "PAYMENTS_ADDR"
    | "NOTIFICATIONS_ADDR"
    | "UPSTREAM_TIMEOUT_MS"
  >,
): Upstreams {
  const timeout = env.UPSTREAM_TIMEOUT_MS;
  return {
    identity: createIdentityClient(env.IDENTITY_ADDR, timeout, {
      tokenUrl: env.OAUTH_TOKEN_URL,
      clientId: env.OAUTH_CLIENT_ID,
      clientSecret: env.OAUTH_CLIENT_SECRET,
    }),
    catalog: createCatalogClient(env.CATALOG_ADDR, timeout),
    inventory: createInventoryClient(env.INVENTORY_ADDR, timeout),
    cart: createCartClient(env.CART_ADDR, timeout),
    orders: createOrdersClient(env.ORDERS_ADDR, timeout),
    payments: createPaymentsClient(env.PAYMENTS_ADDR, timeout),
    notifications: createNotificationsClient(env.NOTIFICATIONS_ADDR, timeout),
  };
}
