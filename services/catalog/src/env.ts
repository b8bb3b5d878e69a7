import { z } from "zod";
import { amqpEnv, authEnv, flagVar, parseEnv, redisEnv, serviceEnv } from "@bazaar/platform/env";

/** The catalog service's configuration, validated at start. */
export const env = parseEnv(
  z.object({
    ...serviceEnv("catalog"),
    ...redisEnv,
    ...amqpEnv,
    ...authEnv,
    /** Seconds a cached product lives: the bound on staleness if an invalidation is lost. */
    PRODUCT_CACHE_TTL_SECONDS: z.coerce.number().int().min(1).max(86_400).default(300),
    /** Load the demo catalog at start when the database has no products (the dev runner sets it). */
    SEED_DEMO_DATA: flagVar(false),
  }),
);
