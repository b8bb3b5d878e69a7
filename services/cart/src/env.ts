import { z } from "zod";
import { amqpEnv, authEnv, commonEnv, hostPort, parseEnv, portVar, redisEnv } from "@bazaar/platform/env";
import { defaultGrpcAddress, serviceEntry } from "@bazaar/platform/service-catalog";
import { currencyCodePattern } from "@bazaar/platform/validation";

const self = serviceEntry("cart");

/** The cart service's configuration, validated at start. It has no database: carts live in Redis. */
export const env = parseEnv(
  z.object({
    ...commonEnv,
    GRPC_PORT: portVar(self.grpcPort ?? 50054),
    HTTP_PORT: portVar(self.httpPort),
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
