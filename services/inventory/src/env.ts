import { z } from "zod";
import { amqpEnv, authEnv, flagVar, hostPort, parseEnv, serviceEnv } from "@bazaar/platform/env";
import { defaultGrpcAddress } from "@bazaar/platform/service-catalog";

/** The inventory service's configuration, validated at start. */
export const env = parseEnv(
  z.object({
    ...serviceEnv("inventory"),
    ...amqpEnv,
    ...authEnv,
    /** Seconds a reservation holds stock before the sweeper gives it back (the saga commits well within it). */
    RESERVATION_TTL_SECONDS: z.coerce
      .number()
      .int()
      .min(1)
      .max(7 * 86_400)
      .default(900),
    /** Milliseconds between sweeps for expired reservations. */
    RESERVATION_SWEEP_MS: z.coerce.number().int().min(10).max(3_600_000).default(30_000),
    /** Give new products a demo quantity instead of none (the dev runner sets it). */
    SEED_DEMO_DATA: flagVar(false),
    /** The catalog, asked once at start for products whose announcement this service missed. */
    CATALOG_ADDR: hostPort.default(defaultGrpcAddress("catalog")),
  }),
);
