import { z } from "zod";
import { commonEnv, hostPort, parseEnv, portVar } from "@bazaar/platform/env";
import { defaultGrpcAddress, serviceEntry } from "@bazaar/platform/service-catalog";

/** The BFF's configuration, validated at start. */
export const env = parseEnv(
  z.object({
    ...commonEnv,
    HTTP_PORT: portVar(serviceEntry("bff").httpPort),
    /** The catalog service's gRPC address. */
    CATALOG_ADDR: hostPort.default(defaultGrpcAddress("catalog")),
    /** Deadline of each call to a service, in milliseconds. */
    UPSTREAM_TIMEOUT_MS: z.coerce.number().int().min(50).max(60_000).default(2_000),
  }),
);
