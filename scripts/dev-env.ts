import { z } from "zod";
import { parseEnv } from "@bazaar/platform/parse-env";
import { infrastructureDefaults } from "@bazaar/platform/service-catalog";
import { parseReplicas } from "./dev-replicas.ts";

/** DEV_REPLICAS: `catalog=3,orders=2`, instances by service (see dev-replicas.ts); `--replicas` overrides it. */
export const replicasVar = z
  .string()
  .default("")
  .transform((value, ctx) => {
    try {
      return parseReplicas(value);
    } catch (err) {
      ctx.addIssue({ code: "custom", message: `must be service=count,… (e.g. catalog=3,orders=2): ${(err as Error).message}` });
      return z.NEVER;
    }
  });

/** The dev runner's configuration. Everything has a local default; set a variable to change it. */
export const devEnv = parseEnv(
  z.object({
    /** Postgres server (any database on it); each service gets `bazaar_<service>` there. */
    POSTGRES_URL: z.string().url().default(infrastructureDefaults.postgresUrl),
    REDIS_URL: z.string().url().default(infrastructureDefaults.redisUrl),
    AMQP_URL: z.string().url().default(infrastructureDefaults.amqpUrl),
    /** Added to every port of the service catalog: run a second platform beside the first. */
    DEV_PORT_OFFSET: z.coerce.number().int().min(0).max(15_000).default(0),
    /** Appended to every database name and used in the Redis prefix: an isolated platform. */
    DEV_INSTANCE: z
      .string()
      .regex(/^[a-z0-9_]{0,24}$/, "must be lowercase letters, digits and underscores")
      .default(""),
    /** Passed to every process: where traces go (Jaeger's OTLP/HTTP port). */
    OTEL_EXPORTER_OTLP_ENDPOINT: z.string().url().optional(),
    /** Start Prometheus, Alertmanager, the exporters and Jaeger where installed ("false" to skip them). */
    DEV_MONITORING: z
      .enum(["true", "false"])
      .default("true")
      .transform((v) => v === "true"),
    LOG_LEVEL: z.enum(["debug", "info", "warn", "error"]).default("info"),
    /** Milliseconds to wait for every process to report healthy. */
    DEV_HEALTH_TIMEOUT_MS: z.coerce.number().int().min(1_000).default(60_000),
    /** Instances by service, e.g. catalog=3,orders=2; each service runs once when unset. */
    DEV_REPLICAS: replicasVar,
  }),
);

/** The RabbitMQ vhost of an isolated dev instance ("/" for the default platform). */
export function devVhostName(instance: string): string {
  return `bazaar_${instance}`;
}
