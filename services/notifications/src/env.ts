import { z } from "zod";
import { amqpEnv, authEnv, parseEnv, serviceEnv } from "@bazaar/platform/env";
import { serviceEntry } from "@bazaar/platform/service-catalog";

const self = serviceEntry("notifications");

/** The notifications service's configuration, validated at start. */
export const env = parseEnv(
  z.object({
    ...serviceEnv({ grpc: self.grpcPort ?? 50057, http: self.httpPort }, self.database ?? "bazaar_notifications"),
    ...amqpEnv,
    ...authEnv,
  }),
);
