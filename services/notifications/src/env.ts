import { z } from "zod";
import { amqpEnv, authEnv, parseEnv, serviceEnv } from "@bazaar/platform/env";

/** The notifications service's configuration, validated at start. */
export const env = parseEnv(
  z.object({
    ...serviceEnv("notifications"),
    ...amqpEnv,
    ...authEnv,
  }),
);
