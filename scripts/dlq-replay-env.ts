import { z } from "zod";
import { parseEnv } from "@bazaar/platform/env";
import { infrastructureDefaults } from "@bazaar/platform/service-catalog";

/** The DLQ replay command's configuration. */
export const dlqReplayEnv = parseEnv(
  z.object({
    /** The broker (and vhost) of the queue to replay. */
    AMQP_URL: z.string().url().default(infrastructureDefaults.amqpUrl),
  }),
);
