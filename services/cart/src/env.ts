import { z } from "zod";
import { amqpEnv, authEnv, hostPort, parseEnv, redisEnv, serviceEnv } from "@bazaar/platform/env";
import { defaultGrpcAddress } from "@bazaar/platform/service-catalog";
import { currencyCodePattern } from "@bazaar/platform/validation";

/** The cart service's configuration, validated at start. It has no database: carts live in Redis. */
export const env = parseEnv(
  z.object({
    ...serviceEnv("cart"),
    ...redisEnv,
    ...amqpEnv,
    ...authEnv,
    /** The catalog service, which says which products exist and what they cost. */
    CATALOG_ADDR: hostPort.default(defaultGrpcAddress("catalog")),
    /** Days a cart nobody changes is kept; every change starts the count again. */
    CART_TTL_DAYS: z.coerce.number().int().min(1).max(365).default(30),
    /** The shop's currency: carts hold only products priced in it, and an empty cart's total is 0 of it. */
    CART_CURRENCY: z.string().regex(currencyCodePattern, "must be an ISO 4217 code such as USD").default("USD"),
  }),
);
