/**
 * The one list of Bazaar's processes: their names and local default ports. The dev runner,
 * the tests, compose.yaml and the Envoy config all agree with this file (a test checks them).
 * Each process finds its peers as `<NAME>_ADDR` (host:port) and its own ports as `GRPC_PORT` /
 * `HTTP_PORT`; the defaults below are what they fall back to on one machine.
 */
export interface ServiceEntry {
  /** Process name: the folder under services/ (or "bff"), and the OpenTelemetry service.name. */
  name: string;
  /** gRPC port, for services. */
  grpcPort?: number;
  /** HTTP port: /healthz, /metrics and any extras. */
  httpPort: number;
  /** Where the process's entry point lives, relative to the repository root. */
  entry: string;
  /** The Postgres database the service owns, if any. */
  database?: string;
  /** The fully qualified gRPC service names it serves (besides health and reflection). */
  grpcServices?: string[];
  /** Whether it connects to RabbitMQ (publishes or consumes events). */
  messaging?: boolean;
}

/** Every process `bun run dev` starts, in start order (dependencies first). */
export const serviceCatalog = [
  {
    name: "catalog",
    grpcPort: 50052,
    httpPort: 9102,
    entry: "services/catalog/src/main.ts",
    database: "bazaar_catalog",
    grpcServices: ["bazaar.catalog.v1.CatalogService"],
    messaging: true,
  },
  { name: "bff", httpPort: 3000, entry: "bff/src/main.ts" },
] as const satisfies readonly ServiceEntry[];

/** A process name from the catalog. */
export type ServiceName = (typeof serviceCatalog)[number]["name"];

/** The catalog entry for one process. */
export function serviceEntry(name: ServiceName): ServiceEntry {
  const entry = serviceCatalog.find((s) => s.name === name);
  if (!entry) throw new Error(`no process named ${name} in the service catalog`);
  return entry;
}

/** The local default address (host:port) of a service's gRPC server. */
export function defaultGrpcAddress(name: ServiceName): string {
  const { grpcPort } = serviceEntry(name);
  if (grpcPort === undefined) throw new Error(`${name} serves no gRPC`);
  return `127.0.0.1:${grpcPort}`;
}

/** Infrastructure the platform needs, with local defaults. */
export const infrastructureDefaults = {
  postgresUrl: "postgres://postgres@127.0.0.1:5432/postgres",
  redisUrl: "redis://127.0.0.1:6379",
  amqpUrl: "amqp://guest:guest@127.0.0.1:5672",
} as const;
