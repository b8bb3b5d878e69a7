import { z } from "zod";
import { amqpEnv, authEnv, hostPort, oauthClientEnv, parseEnv, serviceEnv } from "@bazaar/platform/env";
import { defaultGrpcAddress } from "@bazaar/platform/service-catalog";

const ms = (min: number, max: number, fallback: number) => z.coerce.number().int().min(min).max(max).default(fallback);

/** The orders service's configuration, validated at start. */
export const env = parseEnv(
  z
    .object({
      ...serviceEnv("orders"),
      ...amqpEnv,
      ...authEnv,
      // The saga calls inventory and payments as the orders service (its own OAuth client).
      ...oauthClientEnv("orders"),
      /** Where the saga's peers are. */
      CATALOG_ADDR: hostPort.default(defaultGrpcAddress("catalog")),
      INVENTORY_ADDR: hostPort.default(defaultGrpcAddress("inventory")),
      PAYMENTS_ADDR: hostPort.default(defaultGrpcAddress("payments")),
      /** How long PlaceOrder and CancelOrder wait for the order to become final before answering PENDING. */
      PLACE_ORDER_WAIT_MS: ms(0, 30_000, 3_000),
      /** How often the saga executor looks for sagas to resume (retries, crashed replicas' sagas). */
      SAGA_POLL_MS: ms(10, 60_000, 500),
      /** How long an executor holds a saga it works on; a crashed replica's sagas are taken over after it. */
      SAGA_LEASE_MS: ms(1_000, 600_000, 30_000),
      /** The deadline of each call the saga makes (it must end well inside the lease). */
      SAGA_CALL_TIMEOUT_MS: ms(100, 120_000, 10_000),
      /** First retry delay after a transient failure; it doubles per attempt up to SAGA_RETRY_MAX_MS. */
      SAGA_RETRY_BASE_MS: ms(1, 60_000, 250),
      SAGA_RETRY_MAX_MS: ms(1, 600_000, 30_000),
    })
    .refine((e) => e.SAGA_CALL_TIMEOUT_MS * 2 <= e.SAGA_LEASE_MS, {
      message: "must be at most half of SAGA_LEASE_MS, so a step always ends inside its lease",
      path: ["SAGA_CALL_TIMEOUT_MS"],
    }),
);
