import { z } from "zod";
import { amqpEnv, commonEnv, flagVar, hostPort, oauthClientEnv, parseEnv, portVar, redisEnv } from "@bazaar/platform/env";
import { defaultGrpcAddress, serviceEntry } from "@bazaar/platform/service-catalog";

/** A proxy's address or network. */
const proxyAddress = z.union([z.ipv4(), z.ipv6(), z.cidrv4(), z.cidrv6()]);

/** The BFF's configuration, validated at start. */
export const env = parseEnv(
  z.object({
    ...commonEnv,
    HTTP_PORT: portVar(serviceEntry("bff").httpPort),
    // The shoppers' port is public (behind the gateway): Prometheus scrapes this one instead.
    /** Where /metrics is served (not on HTTP_PORT). */
    METRICS_PORT: portVar(serviceEntry("bff").metricsPort),
    /** The identity service's gRPC address (sign-up, sign-in, token refresh). */
    IDENTITY_ADDR: hostPort.default(defaultGrpcAddress("identity")),
    // The BFF signs in for shoppers with a service token of its own (its OAuth client's), so
    // that identity believes the shopper's address it passes along (see routes/auth.ts).
    ...oauthClientEnv("bff"),
    /** The catalog service's gRPC address. */
    CATALOG_ADDR: hostPort.default(defaultGrpcAddress("catalog")),
    /** The inventory service's gRPC address. */
    INVENTORY_ADDR: hostPort.default(defaultGrpcAddress("inventory")),
    /** The cart service's gRPC address. */
    CART_ADDR: hostPort.default(defaultGrpcAddress("cart")),
    /** The orders service's gRPC address. */
    ORDERS_ADDR: hostPort.default(defaultGrpcAddress("orders")),
    /** The payments service's gRPC address (checkout tokenizes the shopper's card there). */
    PAYMENTS_ADDR: hostPort.default(defaultGrpcAddress("payments")),
    /** The notifications service's gRPC address. */
    NOTIFICATIONS_ADDR: hostPort.default(defaultGrpcAddress("notifications")),
    /** Deadline of each call to a service, in milliseconds. */
    UPSTREAM_TIMEOUT_MS: z.coerce.number().int().min(50).max(60_000).default(2_000),
    /**
     * Deadline of PlaceOrder, in milliseconds: orders answers once the order is final or after
     * its own wait (3 s by default), so this must be longer than that wait.
     */
    CHECKOUT_TIMEOUT_MS: z.coerce.number().int().min(500).max(60_000).default(8_000),
    // Sessions (and checkout idempotency keys) live in Redis under REDIS_KEY_PREFIX + "bff:".
    ...redisEnv,
    // Order events for live order status, from a queue of this process's own.
    ...amqpEnv,
    /** Mark the cookies Secure always (they are anyway on a request that reached the edge over https). */
    COOKIE_SECURE: flagVar(false),
    /**
     * Proxies whose X-Forwarded-Proto is believed, comma-separated addresses or CIDRs (the
     * gateway's): a request they forwarded over https gets Secure cookies. Default loopback.
     */
    TRUSTED_PROXIES: z
      .string()
      .default("127.0.0.0/8,::1")
      .transform((list) =>
        list
          .split(",")
          .map((s) => s.trim())
          .filter(Boolean),
      )
      .refine((entries) => entries.every((e) => proxyAddress.safeParse(e).success), "must list IP addresses or CIDRs, comma-separated"),
    /** Live-update streams (GET /api/events) one session may hold open; more are refused with a 429. */
    EVENT_STREAMS_PER_SESSION: z.coerce.number().int().min(1).max(1_000).default(8),
    /** Live-update streams this process holds open in all; more are refused with a 429. */
    EVENT_STREAMS_MAX: z.coerce.number().int().min(1).max(1_000_000).default(1_000),
    /** Products (and, apart, stock levels) the product page keeps in this process at most. */
    PRODUCT_PAGE_MAX_ENTRIES: z.coerce.number().int().min(1).max(10_000_000).default(10_000),
    /**
     * How long, in milliseconds, the product page serves a kept product or stock level that no
     * event has confirmed: the bound on staleness should events be lost unnoticed.
     */
    PRODUCT_PAGE_MAX_AGE_MS: z.coerce.number().int().min(0).max(3_600_000).default(10_000),
    /** How long a session lives without being used; each use extends it. */
    SESSION_TTL_HOURS: z.coerce
      .number()
      .min(0.01)
      .max(24 * 90)
      .default(24 * 7),
  }),
);

/** The validated configuration's type. */
export type BffEnv = typeof env;
