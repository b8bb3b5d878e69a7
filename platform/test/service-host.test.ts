import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import { sql } from "drizzle-orm";
import { configureLogging } from "@bazaar/platform/log";
import { on } from "@bazaar/platform/messaging/broker";
import { events } from "@bazaar/platform/messaging/events";
import { enqueueEvent } from "@bazaar/platform/messaging/outbox";
import { outbox } from "@bazaar/platform/messaging/tables";
import { ServiceHost, type ServiceHostEnv, startService } from "@bazaar/platform/service";
import { freePort, startTestProcess, testDatabaseUrl, testRedisPrefix, testVhost } from "@bazaar/testkit/fixtures";
import { eventually } from "@bazaar/testkit/eventually";

// The host's defaults: the database and migrations by convention, one broker per process, the
// outbox relay on it. Against a real Postgres database and a RabbitMQ vhost of this run's own.
const database = testDatabaseUrl("service_host");
let vhost: Awaited<ReturnType<typeof testVhost>>;

const baseEnv: ServiceHostEnv = { LOG_LEVEL: "error", SHUTDOWN_DRAIN_MS: 0, HTTP_PORT: 0 };

beforeAll(async () => {
  configureLogging("service-host-test", "error");
  vhost = await testVhost();
}, 30_000);

afterAll(async () => {
  await database.drop();
  await vhost?.drop();
}, 30_000);

describe("ServiceHost", () => {
  test("opens DATABASE_URL with the service's committed migrations, shares one broker, and relays the outbox over it", async () => {
    // Named after a real service, so its migrations (services/catalog/drizzle) apply.
    const host = new ServiceHost("catalog", { ...baseEnv, DATABASE_URL: database.url, AMQP_URL: vhost.url });
    try {
      const db = await host.openDatabase({ schema: {} });
      const tables = await db.db.execute<{ name: string }>(sql`select table_name as name from information_schema.tables where table_schema = 'public'`);
      expect(tables.map((t) => t.name)).toEqual(expect.arrayContaining(["products", "categories", "outbox"]));

      const broker = await host.connectBroker();
      expect(await host.connectBroker()).toBe(broker);
      const received: string[] = [];
      await broker.fanOut({ name: "test.host", handlers: [on(events.stockChanged, async (e) => void received.push(e.productId))] });
      const relay = await host.useOutbox(db);
      await db.db.transaction((tx) =>
        enqueueEvent(tx, events.stockChanged, { productId: "via-host", onHand: 1, reserved: 0, available: 1, occurTime: timestampNow() }),
      );
      relay.wake();
      await eventually(() => received.includes("via-host"), { what: "the relayed event", timeoutMs: 10_000 });
      const pending = await db.db.execute<{ n: number }>(sql`select count(*)::int as n from ${outbox} where published_at is null`);
      expect(pending[0]?.n).toBe(0);
    } finally {
      await host.stop();
    }
  }, 30_000);

  test("a resource the environment does not configure is an error naming the variable", async () => {
    const host = new ServiceHost("catalog", baseEnv);
    await expect(host.openDatabase({ schema: {} })).rejects.toThrow("no DATABASE_URL");
    await expect(host.connectBroker()).rejects.toThrow("no AMQP_URL");
    await expect(host.connectRedis()).rejects.toThrow("no REDIS_URL");
  });

  test("startService verifies tokens by default, so it needs authEnv's variables (or auth: false)", () => {
    expect(() => startService("catalog", { ...baseEnv, JWKS_URL: "", JWT_ISSUER: "https://identity.bazaar.local", JWT_AUDIENCE: "bazaar" })).toThrow(
      "lacks JWKS_URL, JWT_ISSUER or JWT_AUDIENCE",
    );
    expect(startService("catalog", baseEnv, { auth: false })).toBeInstanceOf(ServiceHost);
  });
});

describe("a service whose port another program holds", () => {
  test("exits 1 with an error naming the server, the address in use and how to find the holder", async () => {
    const holder = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    const redis = testRedisPrefix();
    const cart = startTestProcess("cart", { grpcPort: holder.port, httpPort: freePort(), redisPrefix: redis.prefix, amqpUrl: vhost.url, shutdownDrainMs: 0 });
    try {
      expect(await Promise.race([cart.finished.then(() => cart.proc.exitCode), Bun.sleep(30_000).then(() => "still running after 30 s")])).toBe(1);
      expect(cart.output()).toContain(
        `gRPC cannot listen on 127.0.0.1:${holder.port}: the port is in use by another process (\`ss -ltnp 'sport = :${holder.port}'\``,
      );
    } finally {
      holder.stop(true);
      await cart.stop();
      await redis.clear();
    }
  }, 40_000);
});
