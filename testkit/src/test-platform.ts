/**
 * A whole Bazaar platform for cross-service tests, each process started on its own (not by
 * the dev runner) so a test can kill and restart one of them: its own databases, Redis
 * prefix and RabbitMQ vhost, free ports, and typed clients for every service.
 */
import type { DescService } from "@bufbuild/protobuf";
import postgres from "postgres";
import { createClient, type GrpcClient } from "@bazaar/platform/grpc/client";
import { type ChildProcess, waitForHealthy } from "@bazaar/platform/processes";
import { joinHostPort, loopback } from "@bazaar/platform/host-port";
import { peerEnv, serviceCatalog, type ServiceEntry, type ServiceName } from "@bazaar/platform/service-catalog";
import { eventually } from "./eventually.ts";
import { freePort, startTestProcess, testDatabaseUrl, testRedisPrefix, testVhost } from "./fixtures.ts";
import { CartService } from "@bazaar/proto/bazaar/cart/v1/cart_pb";
import { CatalogService } from "@bazaar/proto/bazaar/catalog/v1/catalog_pb";
import { IdentityService } from "@bazaar/proto/bazaar/identity/v1/identity_pb";
import { InventoryService } from "@bazaar/proto/bazaar/inventory/v1/inventory_pb";
import { NotificationsService } from "@bazaar/proto/bazaar/notifications/v1/notifications_pb";
import { OrdersService } from "@bazaar/proto/bazaar/orders/v1/orders_pb";
import { PaymentsService } from "@bazaar/proto/bazaar/payments/v1/payments_pb";

const services = (serviceCatalog as readonly ServiceEntry[]).filter((e) => e.grpcPort !== undefined);

/** Typed clients of every service. */
export interface PlatformClients {
  identity: GrpcClient<typeof IdentityService>;
  catalog: GrpcClient<typeof CatalogService>;
  inventory: GrpcClient<typeof InventoryService>;
  cart: GrpcClient<typeof CartService>;
  orders: GrpcClient<typeof OrdersService>;
  payments: GrpcClient<typeof PaymentsService>;
  notifications: GrpcClient<typeof NotificationsService>;
}

/** A running test platform. */
export interface TestPlatform {
  clients: PlatformClients;
  /**
   * gRPC address of a service, as its callers are given it: every instance's, comma-separated
   * (the chassis's client balances across them), or one instance's when `replica` is given.
   */
  address(name: ServiceName, replica?: number): string;
  /** http://127.0.0.1:port of an instance's HTTP side (/healthz, /metrics); the first instance's by default. */
  httpUrl(name: ServiceName, replica?: number): string;
  /** How many instances of a service run (see TestPlatformOptions.replicas). */
  replicas(name: ServiceName): number;
  /** The process of an instance (for its output, or to kill it). */
  process(name: ServiceName, replica?: number): ChildProcess;
  /** Stops an instance (SIGKILL for a crash, SIGTERM for a clean stop) and waits for it to exit. */
  stop(name: ServiceName, signal?: NodeJS.Signals, replica?: number): Promise<void>;
  /** Starts a stopped instance again, on the same ports, database and vhost. */
  start(name: ServiceName, extraEnv?: Record<string, string>, replica?: number): Promise<void>;
  /** The BFF processes (TestPlatformOptions.bffs), empty when none was asked for. */
  bffs: readonly TestBff[];
  /** The vhost name (for rabbitmqctl). */
  vhost: string;
  /** Runs SQL on a service's own database (to check invariants the RPCs do not show). */
  query<T = Record<string, unknown>>(name: ServiceName, text: string, params?: unknown[]): Promise<T[]>;
  cleanup(): Promise<void>;
}

/** A BFF process of a test platform. */
export interface TestBff {
  /** http://127.0.0.1:port of its shoppers' side. */
  url: string;
  /** http://127.0.0.1:port of its /metrics. */
  metricsUrl: string;
  process(): ChildProcess;
  /** Stops it (SIGTERM by default) and waits for it to exit. */
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** Starts it again on the same ports. */
  start(): Promise<void>;
}

/**
 * `count` products with at least `min` units available, from the first page of the catalog.
 * Inventory learns of products from catalog events, so it waits until enough are stocked.
 */
export async function stockedProducts(
  clients: Pick<PlatformClients, "catalog" | "inventory">,
  count: number,
  min: number,
): Promise<{ id: string; available: number }[]> {
  const { products } = await clients.catalog.listProducts({ pageSize: 100 });
  return eventually(
    async () => {
      const { levels } = await clients.inventory.getStock({ productIds: products.map((p) => p.id) });
      const ok = levels.filter((l) => l.available >= min).map((l) => ({ id: l.productId, available: l.available }));
      return ok.length >= count ? ok.slice(0, count) : undefined;
    },
    { what: `${count} products with ${min}+ units in stock` },
  );
}

/** Options of {@link startTestPlatform}. */
export interface TestPlatformOptions {
  /**
   * Start only these services (identity among them: everyone needs its keys); every service
   * when not given. The clients of the others point at ports nothing listens on.
   */
  only?: readonly ServiceName[];
  /**
   * Servers of the test's own (see ./private-servers.ts) in place of the machine's shared ones:
   * every service's database on `postgresUrl`'s server, every Redis client on `redisUrl`, every
   * broker connection to `amqpUrl` (a broker of the test's own needs no vhost of its own).
   */
  servers?: { postgresUrl?: string; redisUrl?: string; amqpUrl?: string };
  /**
   * Instances of a service, e.g. `{ catalog: 3, orders: 2 }` (1 when not named): each on ports
   * of its own and otherwise configured alike, as a Deployment's pods, all of them started at
   * once (their migrations, and their demo-data seeding, meet under advisory locks); every
   * caller is given the list of every instance's address.
   */
  replicas?: Partial<Record<ServiceName, number>>;
  /**
   * BFF processes to start on top (none by default), sharing the platform's Redis prefix
   * (sessions) and vhost, each following the events on queues of its own.
   */
  bffs?: number;
}

/** One process of the platform: an instance of a service, or a BFF. */
interface Instance {
  name: ServiceName;
  replica: number;
  grpcPort: number;
  httpPort: number;
  metricsPort?: number;
  child?: ChildProcess;
}

/**
 * Starts identity first (everyone needs its keys), then every other service at once; `env`
 * adds or overrides variables of a service's process.
 */
export async function startTestPlatform(
  env: Partial<Record<ServiceName, Record<string, string>>> = {},
  options: TestPlatformOptions = {},
): Promise<TestPlatform> {
  const { only, servers = {}, replicas = {}, bffs = 0 } = options;
  if (only && !only.includes("identity")) throw new Error(`startTestPlatform: only must include identity (got ${only.join(", ") || "none"})`);
  for (const [name, n] of Object.entries(replicas)) {
    if (!services.some((s) => s.name === name)) throw new Error(`startTestPlatform: replicas names ${name}, which is not a gRPC service`);
    if (!Number.isInteger(n) || (n as number) < 1) throw new Error(`startTestPlatform: replicas of ${name} must be a whole number of at least 1, got ${n}`);
  }
  const wanted = services.filter((s) => !only || only.includes(s.name as ServiceName));
  const vhost = servers.amqpUrl ? { url: servers.amqpUrl, name: new URL(servers.amqpUrl).pathname.slice(1) || "/", drop: async () => {} } : await testVhost();
  const redis = testRedisPrefix(servers.redisUrl);
  const instances = new Map<ServiceName, Instance[]>(
    services.map((s) => {
      const name = s.name as ServiceName;
      return [name, Array.from({ length: replicas[name] ?? 1 }, (_, replica) => ({ name, replica, grpcPort: freePort(), httpPort: freePort() }))];
    }),
  );
  const bffInstances: Instance[] = Array.from({ length: bffs }, (_, replica) => ({
    name: "bff",
    replica,
    grpcPort: freePort(),
    httpPort: freePort(),
    metricsPort: freePort(),
  }));
  const databases = new Map(wanted.flatMap((s) => (s.database ? [[s.name, testDatabaseUrl(s.name, servers.postgresUrl)] as const] : [])));
  const address = (name: ServiceName, replica?: number) => {
    const all = instances.get(name);
    if (!all) throw new Error(`${name} is not a gRPC service`);
    if (replica !== undefined && !all[replica]) throw new Error(`${name} has no instance ${replica} (it runs ${all.length})`);
    return (replica === undefined ? all : [all[replica] as Instance]).map((i) => joinHostPort(loopback, i.grpcPort)).join(",");
  };
  const instance = (name: ServiceName, replica = 0): Instance => {
    const found = name === "bff" ? bffInstances[replica] : instances.get(name)?.[replica];
    if (!found) throw new Error(`${name} has no instance ${replica}`);
    return found;
  };
  // Every caller gets every instance of each service; JWKS and tokens from the first identity.
  const peers = {
    ...peerEnv((name) => ({ http: instances.get(name as ServiceName)?.[0]?.httpPort ?? 0 })),
    ...Object.fromEntries(services.map((s) => [`${s.name.toUpperCase()}_ADDR`, address(s.name as ServiceName)])),
  };

  const start = async (name: ServiceName, extraEnv: Record<string, string> = {}, replica = 0) => {
    if (name !== "bff" && !instances.has(name)) throw new Error(`${name} is not a gRPC service`);
    if (name !== "bff" && !wanted.some((s) => s.name === name)) throw new Error(`${name} is not part of this test platform (see TestPlatformOptions.only)`);
    const i = instance(name, replica);
    i.child = startTestProcess(name, {
      grpcPort: i.grpcPort,
      httpPort: i.httpPort,
      metricsPort: i.metricsPort,
      redisPrefix: redis.prefix,
      databaseUrl: databases.get(name)?.url,
      amqpUrl: vhost.url,
      shutdownDrainMs: 100,
      env: {
        ...peers,
        ...(servers.redisUrl ? { REDIS_URL: servers.redisUrl } : {}),
        ...env[name],
        ...extraEnv,
      },
    });
    await waitForHealthy(i.child, `http://127.0.0.1:${i.httpPort}/healthz`, 60_000);
  };
  const stop = async (name: ServiceName, signal: NodeJS.Signals = "SIGTERM", replica = 0) => {
    await instance(name, replica).child?.stop(signal);
  };
  const processOf = (name: ServiceName, replica = 0) => {
    const child = instance(name, replica).child;
    if (!child) throw new Error(`${name} instance ${replica} was never started`);
    return child;
  };

  const clients: Record<string, GrpcClient<DescService>> = {};
  const cleanup = async () => {
    for (const c of Object.values(clients)) c.close();
    const all = [...bffInstances, ...[...instances.values()].flat()];
    await Promise.all(all.map((i) => i.child?.stop("SIGTERM")));
    for (const db of databases.values()) await db.drop().catch(() => {});
    await redis.clear().catch(() => {});
    await vhost.drop().catch(() => {});
  };

  try {
    const all = wanted.flatMap((s) => instances.get(s.name as ServiceName) ?? []);
    // The first identity creates the signing keys the others (and every caller) use.
    await start("identity");
    await Promise.all(all.filter((i) => i.name !== "identity" || i.replica > 0).map((i) => start(i.name, {}, i.replica)));
    await Promise.all(bffInstances.map((i) => start("bff", {}, i.replica)));
  } catch (err) {
    await cleanup();
    throw err;
  }
  const make = <S extends DescService>(svc: S, name: ServiceName) => {
    const client = createClient(svc, address(name), { defaultTimeoutMs: 10_000 });
    clients[name] = client as unknown as GrpcClient<DescService>;
    return client;
  };
  return {
    clients: {
      identity: make(IdentityService, "identity"),
      catalog: make(CatalogService, "catalog"),
      inventory: make(InventoryService, "inventory"),
      cart: make(CartService, "cart"),
      orders: make(OrdersService, "orders"),
      payments: make(PaymentsService, "payments"),
      notifications: make(NotificationsService, "notifications"),
    },
    address,
    httpUrl: (name, replica = 0) => `http://127.0.0.1:${instance(name, replica).httpPort}`,
    replicas: (name) => instances.get(name)?.length ?? 0,
    process: processOf,
    stop,
    start,
    bffs: bffInstances.map((i) => ({
      url: `http://127.0.0.1:${i.httpPort}`,
      metricsUrl: `http://127.0.0.1:${i.metricsPort}`,
      process: () => processOf("bff", i.replica),
      stop: (signal?: NodeJS.Signals) => stop("bff", signal, i.replica),
      start: () => start("bff", {}, i.replica),
    })),
    vhost: vhost.name,
    query: async <T>(name: ServiceName, text: string, params: unknown[] = []) => {
      const db = databases.get(name);
      if (!db) throw new Error(`${name} has no database`);
      const sql = postgres(db.url, { max: 1, onnotice: () => {} });
      try {
        return (await sql.unsafe(text, params as never[])) as unknown as T[];
      } finally {
        await sql.end({ timeout: 5 });
      }
    },
    cleanup,
  };
}
