/**
 * A whole Bazaar platform for cross-service tests, each process started on its own (not by
 * the dev runner) so a test can kill and restart one of them: its own databases, Redis
 * prefix and RabbitMQ vhost, free ports, and typed clients for every service.
 */
import type { DescService } from "@bufbuild/protobuf";
import postgres from "postgres";
import { createClient, type GrpcClient } from "@bazaar/platform/grpc/client";
import { type ChildProcess, waitForHealthy } from "@bazaar/platform/processes";
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
  /** gRPC address of a service. */
  address(name: ServiceName): string;
  /** http://127.0.0.1:port of a service's HTTP side (/healthz, /metrics). */
  httpUrl(name: ServiceName): string;
  /** The process of a service (for its output, or to kill it). */
  process(name: ServiceName): ChildProcess;
  /** Stops a service (SIGKILL for a crash, SIGTERM for a clean stop) and waits for it to exit. */
  stop(name: ServiceName, signal?: NodeJS.Signals): Promise<void>;
  /** Starts a stopped service again, on the same ports, database and vhost. */
  start(name: ServiceName, extraEnv?: Record<string, string>): Promise<void>;
  /** The vhost name (for rabbitmqctl). */
  vhost: string;
  /** Runs SQL on a service's own database (to check invariants the RPCs do not show). */
  query<T = Record<string, unknown>>(name: ServiceName, text: string, params?: unknown[]): Promise<T[]>;
  cleanup(): Promise<void>;
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
}

/**
 * Starts identity first (everyone needs its keys), then every other service at once; `env`
 * adds or overrides variables of a service's process.
 */
export async function startTestPlatform(
  env: Partial<Record<ServiceName, Record<string, string>>> = {},
  options: TestPlatformOptions = {},
): Promise<TestPlatform> {
  const { only, servers = {} } = options;
  if (only && !only.includes("identity")) throw new Error(`startTestPlatform: only must include identity (got ${only.join(", ") || "none"})`);
  const wanted = services.filter((s) => !only || only.includes(s.name as ServiceName));
  const vhost = servers.amqpUrl ? { url: servers.amqpUrl, name: new URL(servers.amqpUrl).pathname.slice(1) || "/", drop: async () => {} } : await testVhost();
  const redis = testRedisPrefix(servers.redisUrl);
  const ports = new Map(services.map((s) => [s.name, { grpc: freePort(), http: freePort() }]));
  const databases = new Map(wanted.flatMap((s) => (s.database ? [[s.name, testDatabaseUrl(s.name, servers.postgresUrl)] as const] : [])));
  const peers = peerEnv((name) => ports.get(name) ?? { http: 0 });
  const children = new Map<string, ChildProcess>();

  const start = async (name: ServiceName, extraEnv: Record<string, string> = {}) => {
    const p = ports.get(name);
    if (!p) throw new Error(`${name} is not a gRPC service`);
    if (!wanted.some((s) => s.name === name)) throw new Error(`${name} is not part of this test platform (see TestPlatformOptions.only)`);
    const child = startTestProcess(name, {
      grpcPort: p.grpc,
      httpPort: p.http,
      redisPrefix: redis.prefix,
      databaseUrl: databases.get(name)?.url,
      amqpUrl: vhost.url,
      shutdownDrainMs: 100,
      env: { ...peers, ...(servers.redisUrl ? { REDIS_URL: servers.redisUrl } : {}), ...env[name], ...extraEnv },
    });
    children.set(name, child);
    await waitForHealthy(child, `http://127.0.0.1:${p.http}/healthz`, 60_000);
  };

  const clients: Record<string, GrpcClient<DescService>> = {};
  const cleanup = async () => {
    for (const c of Object.values(clients)) c.close();
    await Promise.all([...children.values()].map((c) => c.stop("SIGTERM")));
    for (const db of databases.values()) await db.drop().catch(() => {});
    await redis.clear().catch(() => {});
    await vhost.drop().catch(() => {});
  };

  try {
    await start("identity");
    await Promise.all(wanted.filter((s) => s.name !== "identity").map((s) => start(s.name as ServiceName)));
  } catch (err) {
    await cleanup();
    throw err;
  }
  const address = (name: ServiceName) => `127.0.0.1:${ports.get(name)?.grpc}`;
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
    httpUrl: (name) => `http://127.0.0.1:${ports.get(name)?.http}`,
    process: (name) => {
      const child = children.get(name);
      if (!child) throw new Error(`${name} was never started`);
      return child;
    },
    stop: async (name, signal = "SIGTERM") => {
      await children.get(name)?.stop(signal);
    },
    start,
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
