import { z } from "zod";
import { jwtSettings } from "./auth.ts";
import { withDatabase } from "./db.ts";
import { loopback } from "./host-port.ts";
import { type DatabaseServiceName, type GrpcServiceName, infrastructureDefaults, jwksUrl, serviceEntry, tokenEndpointUrl } from "./service-catalog.ts";
import { oauthClientIdPattern, oauthClientIdRule } from "./validation.ts";

/** Where a process runs: on a developer's machine (or in a test), or anywhere real. */
export type DeploymentMode = "development" | "production";

/**
 * The deployment mode: DEPLOYMENT_MODE when set, else "production" when NODE_ENV is
 * "production" (the Dockerfile sets it), else "development". A value that is neither counts
 * as production: a typo must not switch the checks off ({@link commonEnv} reports it too).
 */
export function deploymentMode(source: Record<string, string | undefined> = process.env): DeploymentMode {
  const declared = source.DEPLOYMENT_MODE;
  if (declared === "development" || declared === "production") return declared;
  if (declared) return "production";
  return source.NODE_ENV === "production" ? "production" : "development";
}

/** What {@link developmentSecret} records about a variable. */
interface DevelopmentDefault {
  /** The default, public in this repository. */
  value: string;
  /** How to make a real value, e.g. "openssl rand -base64 32". */
  howToSet: string;
}

// The variables whose defaults are known development values; parseEnv refuses them outside
// development. A registry (not a wrapper type) so the schema stays a plain zod string.
const developmentDefaults = z.registry<DevelopmentDefault>();

/**
 * A secret with a development default, so `bun run dev` and the tests need no setup. Outside
 * development (see {@link deploymentMode}) a process whose value is still that default (or
 * unset) refuses to start, naming the variable and `howToSet`: a default in this repository
 * is known to everyone. `schema` checks a value that is set (it parses the default too).
 */
export function developmentSecret<S extends z.ZodType<unknown, string>>(schema: S, devDefault: string, howToSet: string) {
  // prefault, not default: the default goes through `schema` (and its transforms) too.
  const variable = schema.prefault(devDefault as z.input<S>);
  developmentDefaults.add(variable, { value: devDefault, howToSet });
  return variable;
}

/** One line per variable of `schema` that is left at its development default outside development. */
export function developmentDefaultsLeft(schema: z.ZodType, source: Record<string, string | undefined>): string[] {
  const mode = deploymentMode(source);
  if (mode === "development" || !(schema instanceof z.ZodObject)) return [];
  const why = source.DEPLOYMENT_MODE ? `DEPLOYMENT_MODE=${source.DEPLOYMENT_MODE}` : `NODE_ENV=${source.NODE_ENV}`;
  const lines: string[] = [];
  for (const [name, field] of Object.entries(schema.shape as Record<string, z.ZodType>)) {
    const dev = developmentDefaults.get(field);
    const value = source[name];
    if (!dev || (value !== undefined && value !== "" && value !== dev.value)) continue;
    const state = value === undefined || value === "" ? "it is not set, so it would be its development default" : "it is the development default";
    lines.push(
      `invalid environment variable ${name}: ${state}, which is public, and this process runs in production (${why}); set a value of your own: ${dev.howToSet}`,
    );
  }
  return lines;
}

/**
 * Parses the environment against a zod schema. On a bad or missing variable it prints one
 * line per problem, naming the variable and what was wrong, and exits with status 1: a
 * process that starts, starts with a valid configuration. Outside development, a secret left
 * at its development default (see {@link developmentSecret}) is such a problem too.
 *
 * Each app calls this once, from its own `src/env.ts`; nothing else reads `process.env`.
 */
export function parseEnv<S extends z.ZodType>(schema: S, source: Record<string, string | undefined> = process.env): z.infer<S> {
  const result = schema.safeParse(source);
  const defaultsLeft = developmentDefaultsLeft(schema, source);
  if (result.success && defaultsLeft.length === 0) return result.data;
  const shape = schema instanceof z.ZodObject ? (schema.shape as Record<string, z.ZodType>) : {};
  for (const issue of result.error?.issues ?? []) {
    const name = issue.path.join(".") || "(environment)";
    const value = source[name];
    // A secret's value stays out of the logs, even a wrong one.
    const secret = shape[name] !== undefined && developmentDefaults.has(shape[name]);
    const shown = value === undefined ? "it is not set" : secret ? `got ${value.length} characters, not shown` : `got ${JSON.stringify(value)}`;
    process.stderr.write(`invalid environment variable ${name}: ${issue.message} (${shown})\n`);
  }
  for (const line of defaultsLeft) process.stderr.write(`${line}\n`);
  process.exit(1);
}

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

/** A peer's address, host:port. */
export const hostPort = z.string().regex(/^[\w.-]+:\d{1,5}$/, "must be host:port");

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
  /** Base URL of an OTLP/HTTP receiver (Jaeger: http://jaeger:4318); unset disables export. */
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
