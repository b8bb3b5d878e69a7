import { z } from "zod";
import { jwtSettings } from "./auth.ts";
import { withDatabase } from "./database-url.ts";
import { loopback, parsePeerAddresses } from "./host-port.ts";
import { developmentSecret } from "./parse-env.ts";
import { type DatabaseServiceName, type GrpcServiceName, infrastructureDefaults, jwksUrl, serviceEntry, tokenEndpointUrl } from "./service-catalog.ts";
import { oauthClientIdPattern, oauthClientIdRule } from "./validation.ts";

export { type DeploymentMode, deploymentMode, developmentDefaultsLeft, developmentSecret, parseEnv } from "./parse-env.ts";

const port = z.coerce.number().int().min(0).max(65535);
const optionalUrl = z
  .string()
  .url()
  .optional()
  .or(z.literal("").transform(() => undefined));

/** A yes/no variable: "true"/"1" or "false"/"0" (or empty, meaning the default). */
export const flagVar = (fallback: boolean) =>
  z
    .enum(["true", "false", "1", "0", ""])
    .optional()
    .transform((v) => (v === undefined || v === "" ? fallback : v === "true" || v === "1"));

/**
 * A peer's address: host:port, or a comma-separated list of IP host:ports (the replicas of a
 * service), as the chassis's gRPC client takes it.
 */
export const hostPort = z.string().superRefine((value, ctx) => {
  try {
    parsePeerAddresses(value);
  } catch (err) {
    ctx.addIssue({ code: "custom", message: `must be host:port or a list of IP host:ports: ${(err as Error).message}` });
  }
});

/** A TCP port, given as a string of digits. */
export const portVar = (fallback: number) => port.default(fallback);

/**
 * A listen address: an IPv4 or IPv6 address, or a host name. `0.0.0.0` (every interface) is
 * for containers, where peers reach the process over the container network.
 */
const bindHost = z.union([z.ipv4(), z.ipv6(), z.string().regex(/^[a-zA-Z0-9.-]+$/, "must be an IP address or a host name")]);

/** Variables every process understands: where it listens, logging and tracing. */
export const commonEnv = {
  /**
   * "development" or "production" (see {@link deploymentMode}); unset or empty, it follows NODE_ENV.
   * Outside development a secret left at its development default refuses to start.
   */
  DEPLOYMENT_MODE: z.enum(["development", "production", ""]).optional(),
  /**
   * The address every server of the process (gRPC, HTTP, metrics) binds. Loopback by default,
   * so a developer's machine exposes nothing to its network; compose.yaml sets 0.0.0.0.
   */
  BIND_HOST: bindHost.default(loopback),
  /** Lowest level logged: debug, info, warn or error. */
  LOG_LEVEL: z.enum(["debug", "info", "warn", "error"]).default("info"),
  /** Base URL of an OTLP/HTTP receiver for spans and log records (compose: the collector, http://otel-collector:4318); unset disables export. */
  OTEL_EXPORTER_OTLP_ENDPOINT: optionalUrl,
  /** Milliseconds a process waits, NOT_SERVING, before it stops accepting calls on shutdown. */
  SHUTDOWN_DRAIN_MS: z.coerce.number().int().min(0).max(60_000).default(1000),
};

const grpcServiceVars = (ports: { grpcPort: number; httpPort: number }) => ({
  ...commonEnv,
  GRPC_PORT: portVar(ports.grpcPort),
  HTTP_PORT: portVar(ports.httpPort),
});

const databaseVars = (database: string) => ({
  /** The service's own database; created if missing and migrated at start. */
  DATABASE_URL: z.string().url().default(withDatabase(infrastructureDefaults.postgresUrl, database)),
});

/**
 * Variables of a gRPC service, with the service catalog's defaults: `commonEnv`, its ports
 * and, for a service that owns a database, DATABASE_URL.
 */
export function serviceEnv(name: DatabaseServiceName): ReturnType<typeof grpcServiceVars> & ReturnType<typeof databaseVars>;
export function serviceEnv(name: GrpcServiceName): ReturnType<typeof grpcServiceVars>;
export function serviceEnv(name: GrpcServiceName) {
  const entry = serviceEntry(name);
  return { ...grpcServiceVars(entry), ...(entry.database !== undefined ? databaseVars(entry.database) : {}) };
}

/** Redis, for caches. KEY_PREFIX isolates tenants (and test runs) sharing one Redis. */
export const redisEnv = {
  REDIS_URL: z.string().url().default(infrastructureDefaults.redisUrl),
  REDIS_KEY_PREFIX: z.string().max(64).default("bazaar:"),
};

/** Token verification: where identity publishes its keys, and the claims every token carries. */
export const authEnv = {
  /** The identity service's JWKS. */
  JWKS_URL: z.string().url().default(jwksUrl()),
  /** The `iss` of Bazaar's access tokens. */
  JWT_ISSUER: z.string().min(1).default("https://identity.bazaar.local"),
  /** The `aud` of Bazaar's access tokens. */
  JWT_AUDIENCE: z.string().min(1).default("bazaar"),
  /**
   * The longest any verifier keeps a copy of the JWKS, in seconds: identity's Cache-Control
   * max-age, the platform verifier's cache and Envoy's cache_duration (generated from this
   * default). Identity publishes a new signing key at least this long before it signs with it
   * (SIGNING_KEY_LEAD_SECONDS), so set it alike everywhere.
   */
  JWKS_CACHE_SECONDS: z.coerce.number().int().min(1).max(86_400).default(jwtSettings.jwksCacheSeconds),
};

/** RabbitMQ, for events. The URL's path is the vhost (tests use one of their own). */
export const amqpEnv = {
  AMQP_URL: z.string().url().default(infrastructureDefaults.amqpUrl),
};

/** Length of a secret: at least 16 characters (a minted one has 43). */
const secretText = z.string().min(16, "must be at least 16 characters");

/** The development default of a service's OAuth client secret (identity's default clients accept it). */
export function developmentClientSecret(clientId: string): string {
  return `bazaar-dev-${clientId}-client-secret`;
}

/**
 * Service-to-service calls: the OAuth 2.0 client (RFC 6749 §4.4, client credentials) a
 * process authenticates as at identity's token endpoint, for the service token it calls
 * others with on nobody's behalf. Each calling service has a client of its own; identity
 * holds only the hash of its secret (OAUTH_CLIENTS, minted with `bun run oauth:client <id>`).
 */
export function oauthClientEnv(clientId: string) {
  return {
    /** identity's token endpoint. */
    OAUTH_TOKEN_URL: z.string().url().default(tokenEndpointUrl()),
    /** The client id identity knows this process by. */
    OAUTH_CLIENT_ID: z.string().regex(oauthClientIdPattern, oauthClientIdRule).default(clientId),
    /** The client's secret; identity holds its hash. */
    OAUTH_CLIENT_SECRET: developmentSecret(
      secretText,
      developmentClientSecret(clientId),
      `bun run oauth:client ${clientId} mints a secret and the hash identity needs`,
    ),
  };
}

/** A key for an HMAC, with a development default (refused outside development). */
export function hmacKeyVar(devDefault: string) {
  return developmentSecret(secretText, devDefault, "a long random value, e.g. `openssl rand -base64 32`");
}
