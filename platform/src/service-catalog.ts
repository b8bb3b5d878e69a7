import { joinHostPort, loopback } from "./host-port.ts";

/**
 * The one list of Bazaar's processes: their names and local default ports. The dev runner,
 * the tests, compose.yaml and the Envoy config all agree with this file: gateway/envoy-config.ts
 * generates the gateway's config from it (routes from `grpcServices`, clusters from the names
 * and ports) and gateway/envoy-config.test.ts checks the committed envoy.yaml is that output;
 * tests/containers.test.ts checks compose.yaml's services, ports and dependencies, Prometheus's
 * scrape targets and the Dockerfile's workspace manifests against it.
 * Each process finds its peers as `<NAME>_ADDR` (host:port) and its own ports as `GRPC_PORT` /
 * `HTTP_PORT` (and `METRICS_PORT`), bound on `BIND_HOST`; the defaults below are what they fall back to on one machine.
 */
export interface ServiceEntry {
  /** Process name: the folder under services/ (or "bff"), and the OpenTelemetry service.name. */
  name: string;
  /** gRPC port, for services. */
  grpcPort?: number;
  /** HTTP port: /healthz, /metrics (unless `metricsPort` is set) and any extras. */
  httpPort: number;
  /**
   * A port of its own for /metrics, for a process whose HTTP port is public (the BFF's is
   * behind the gateway): scrapes then never share the shoppers' port, and the gateway has no
   * route to them.
   */
  metricsPort?: number;
  /** Where the process's entry point lives, relative to the repository root. */
  entry: string;
  /** The Postgres database the service owns, if any. */
  database?: string;
  /** The fully qualified gRPC service names it serves (besides health and reflection). */
  grpcServices?: readonly string[];
  /** Whether it connects to RabbitMQ (publishes or consumes events). */
  messaging?: boolean;
  /** Whether it uses Redis (cache, carts, sessions, throttles). */
  redis?: boolean;
  /**
   * The processes it calls at run time (fetching identity's JWKS to verify tokens counts):
   * compose starts it only once they are healthy.
   */
  calls?: readonly string[];
  /** Whether its callers reach its HTTP port too, not only gRPC (identity: JWKS and the token endpoint). */
  httpForCallers?: boolean;
}

/** Every process `bun run dev` starts, in start order (dependencies first). */
export const serviceCatalog = [
  {
    name: "identity",
    grpcPort: 50051,
    httpPort: 9101,
    entry: "services/identity/src/main.ts",
    database: "bazaar_identity",
    grpcServices: ["bazaar.identity.v1.IdentityService"],
    messaging: true,
    redis: true,
    httpForCallers: true,
  },
  {
    name: "catalog",
    grpcPort: 50052,
    httpPort: 9102,
    entry: "services/catalog/src/main.ts",
    database: "bazaar_catalog",
    grpcServices: ["bazaar.catalog.v1.CatalogService"],
    messaging: true,
    redis: true,
    calls: ["identity"],
  },
  {
    name: "inventory",
    grpcPort: 50053,
    httpPort: 9103,
    entry: "services/inventory/src/main.ts",
    database: "bazaar_inventory",
    grpcServices: ["bazaar.inventory.v1.InventoryService"],
    messaging: true,
    calls: ["identity", "catalog"],
  },
  {
    name: "cart",
    grpcPort: 50054,
    httpPort: 9104,
    entry: "services/cart/src/main.ts",
    grpcServices: ["bazaar.cart.v1.CartService"],
    messaging: true,
    redis: true,
    calls: ["identity", "catalog"],
  },
  {
    name: "orders",
    grpcPort: 50055,
    httpPort: 9105,
    entry: "services/orders/src/main.ts",
    database: "bazaar_orders",
    grpcServices: ["bazaar.orders.v1.OrdersService"],
    messaging: true,
    calls: ["identity", "catalog", "inventory", "payments"],
  },
  {
    name: "payments",
    grpcPort: 50056,
    httpPort: 9106,
    entry: "services/payments/src/main.ts",
    database: "bazaar_payments",
    grpcServices: ["bazaar.payments.v1.PaymentsService"],
    messaging: true,
    calls: ["identity"],
  },
  {
    name: "notifications",
    grpcPort: 50057,
    httpPort: 9107,
    entry: "services/notifications/src/main.ts",
    database: "bazaar_notifications",
    grpcServices: ["bazaar.notifications.v1.NotificationsService"],
    messaging: true,
    calls: ["identity"],
  },
  {
    name: "bff",
    httpPort: 3000,
    metricsPort: 9100,
    entry: "bff/src/main.ts",
    messaging: true,
    redis: true,
    calls: ["identity", "catalog", "inventory", "cart", "orders", "payments", "notifications"],
  },
] as const satisfies readonly ServiceEntry[];

/** A process name from the catalog. */
export type ServiceName = (typeof serviceCatalog)[number]["name"];

/**
 * The catalog entry of the process named N, with its literal values (a name known only as a
 * ServiceName still sees every field of {@link ServiceEntry}).
 */
export type ServiceEntryOf<N extends ServiceName> = Extract<(typeof serviceCatalog)[number], { name: N }> & ServiceEntry;

/** The processes that serve gRPC. */
export type GrpcServiceName = Extract<(typeof serviceCatalog)[number], { grpcPort: number }>["name"];

/** The services that own a Postgres database. */
export type DatabaseServiceName = Extract<(typeof serviceCatalog)[number], { database: string }>["name"];

/** The catalog entry for one process: `serviceEntry("catalog").grpcPort` is 50052, as a literal type. */
export function serviceEntry<N extends ServiceName>(name: N): ServiceEntryOf<N> {
  const entry = serviceCatalog.find((s): s is ServiceEntryOf<N> => s.name === name);
  if (!entry) throw new Error(`no process named ${name} in the service catalog`);
  return entry;
}

/** The port a process serves /metrics on: its metrics port if it has one, else its HTTP port. */
export function metricsPortOf(entry: ServiceEntry): number {
  return entry.metricsPort ?? entry.httpPort;
}

/** The local default address (host:port) of a service's gRPC server. */
export function defaultGrpcAddress(name: GrpcServiceName): string {
  return joinHostPort(loopback, serviceEntry(name).grpcPort);
}

/** Where identity publishes its signing keys (JWKS), given its host and HTTP port. */
export function jwksUrl(host = loopback, identityHttpPort: number = serviceEntry("identity").httpPort): string {
  return `http://${joinHostPort(host, identityHttpPort)}/.well-known/jwks.json`;
}

/** identity's OAuth 2.0 token endpoint (client credentials), given its host and HTTP port. */
export function tokenEndpointUrl(host = "127.0.0.1", identityHttpPort: number = serviceEntry("identity").httpPort): string {
  return `http://${host}:${identityHttpPort}/oauth2/token`;
}

/** The repository's root directory, without a trailing slash: catalog entries and migrations are relative to it. */
export const repositoryRoot = new URL("../..", import.meta.url).pathname.replace(/\/$/, "");

/**
 * The variables that tell a process where its peers are, given where each process listens:
 * `<NAME>_ADDR` (host:port of each gRPC service), `JWKS_URL` (identity's signing keys) and
 * `OAUTH_TOKEN_URL` (identity's token endpoint).
 */
export function peerEnv(portsOf: (name: string) => { grpc?: number; http: number }, host = loopback): Record<string, string> {
  const env: Record<string, string> = {};
  for (const peer of serviceCatalog as readonly ServiceEntry[]) {
    const ports = portsOf(peer.name);
    if (ports.grpc !== undefined) env[`${peer.name.toUpperCase()}_ADDR`] = joinHostPort(host, ports.grpc);
  }
  env.JWKS_URL = jwksUrl(host, portsOf("identity").http);
  env.OAUTH_TOKEN_URL = tokenEndpointUrl(host, portsOf("identity").http);
  return env;
}

/** Infrastructure the platform needs, with local defaults. */
export const infrastructureDefaults = {
  postgresUrl: "postgres://postgres@127.0.0.1:5432/postgres",
  redisUrl: "redis://127.0.0.1:6379",
  amqpUrl: "amqp://guest:guest@127.0.0.1:5672",
} as const;

/** Infrastructure a process reaches over the network, and the port it reaches it on. */
export const infrastructurePorts = { postgres: 5432, redis: 6379, rabbitmq: 5672, otlp: 4318 } as const;

/** A kind of infrastructure: Postgres, Redis, RabbitMQ or the OTLP/HTTP endpoint (traces). */
export type Infrastructure = keyof typeof infrastructurePorts;

/** Where a process connects: a peer process's port, or a kind of infrastructure. */
export type Dependency = { peer: string; port: number } | { infrastructure: Infrastructure; port: number };

/**
 * Everything a process connects to, from its entry: the gRPC port of each process it calls
 * (and the HTTP port of those with `httpForCallers`), its database, Redis and RabbitMQ, and the
 * OTLP endpoint, which every process exports traces to. The Kubernetes NetworkPolicies are
 * generated from this (deploy/k8s/generate.ts) and checked against it.
 */
export function dependenciesOf(entry: ServiceEntry): Dependency[] {
  const out: Dependency[] = [];
  for (const name of entry.calls ?? []) {
    const peer = (serviceCatalog as readonly ServiceEntry[]).find((s) => s.name === name);
    if (!peer?.grpcPort) throw new Error(`${entry.name} calls ${name}, which serves no gRPC in the service catalog`);
    out.push({ peer: name, port: peer.grpcPort });
    if (peer.httpForCallers) out.push({ peer: name, port: peer.httpPort });
  }
  if (entry.database) out.push({ infrastructure: "postgres", port: infrastructurePorts.postgres });
  if (entry.redis) out.push({ infrastructure: "redis", port: infrastructurePorts.redis });
  if (entry.messaging) out.push({ infrastructure: "rabbitmq", port: infrastructurePorts.rabbitmq });
  out.push({ infrastructure: "otlp", port: infrastructurePorts.otlp });
  return out;
}
