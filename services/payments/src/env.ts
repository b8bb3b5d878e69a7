import { z } from "zod";
import { amqpEnv, authEnv, hmacKeyVar, parseEnv, serviceEnv } from "@bazaar/platform/env";

/** The payments service's configuration, validated at start. */
export const env = parseEnv(
  z.object({
    ...serviceEnv("payments"),
    ...amqpEnv,
    ...authEnv,
    /**
     * Connections in the database pool. A charge holds one for the whole processor call (its
     * idempotency lock lives in that transaction), so this bounds the charges in flight at once.
     */
    DATABASE_MAX_CONNECTIONS: z.coerce.number().int().min(2).max(200).default(20),
    /**
     * The key of the HMAC-SHA-256 that fingerprints a charge request for idempotency checks.
     * Its development default is refused outside development.
     */
    REQUEST_HASH_SECRET: hmacKeyVar("bazaar-dev-payments-request-hash-change-me"),
    /** How long a payment method token (CreatePaymentMethod) can be charged, in seconds. */
    PAYMENT_METHOD_TTL_SECONDS: z.coerce.number().int().min(1).max(86_400).default(900),
    /** How long a replica reuses the fault settings it read, in milliseconds (at most 1 s). */
    FAULT_SETTINGS_CACHE_MS: z.coerce.number().int().min(0).max(1000).default(500),
  }),
);
