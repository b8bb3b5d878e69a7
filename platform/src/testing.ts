import { createClient } from "redis";
import { z } from "zod";
import { dropDatabase, withDatabase } from "./db.ts";
import { deleteVhost, ensureVhost } from "./messaging/vhost.ts";
import { parseEnv } from "./env.ts";
import { type ChildProcess, startProcess, waitForHealthy } from "./processes.ts";
import { infrastructureDefaults, type ServiceName, serviceEntry } from "./service-catalog.ts";

/**
 * Helpers for tests that run against the real Postgres and Redis: every test run gets its
 * own databases and Redis key prefix, and removes them afterwards.
 */
export const testEnv = parseEnv(
  z.object({
    POSTGRES_URL: z.string().url().default(infrastructureDefaults.postgresUrl),
    REDIS_URL: z.string().url().default(infrastructureDefaults.redisUrl),
    AMQP_URL: z.string().url().default(infrastructureDefaults.amqpUrl),
  }),
);

/** A name no other test run uses: letters, digits and underscores. */
export function uniqueName(prefix: string): string {
  return `${prefix}_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`;
}

/** A database URL for a fresh, uniquely named database (created by the code under test). */
export function testDatabaseUrl(service: string): { url: string; drop: () => Promise<void> } {
  const url = withDatabase(testEnv.POSTGRES_URL, uniqueName(`bazaar_${service}_test`));
  return { url, drop: () => dropDatabase(url) };
}

/** Deletes every Redis key that starts with `prefix`; resolves with how many it deleted. */
export async function clearRedisPrefix(prefix: string): Promise<number> {
  const client = createClient({ url: testEnv.REDIS_URL });
  client.on("error", () => {});
  await client.connect();
  let deleted = 0;
  try {
    for await (const keys of client.scanIterator({ MATCH: `${prefix}*`, COUNT: 500 })) {
      if (keys.length) deleted += await client.del(keys);
    }
    return deleted;
  } finally {
    await client.close();
  }
}

/** A unique Redis key prefix, and a function that deletes every key under it. */
export function testRedisPrefix(): { prefix: string; clear: () => Promise<number> } {
  const prefix = `${uniqueName("bazaar_test")}:`;
  return { prefix, clear: () => clearRedisPrefix(prefix) };
}

/**
 * A RabbitMQ virtual host of this test run's own (exchanges and queues isolated from every
 * other run and from `bun run dev`); `drop` deletes it and all in it.
 */
export async function testVhost(): Promise<{ url: string; name: string; drop: () => Promise<void> }> {
  const name = uniqueName("bazaar_test");
  const url = await ensureVhost(testEnv.AMQP_URL, name);
  return { url, name, drop: () => deleteVhost(name) };
}

/** A TCP port that was free a moment ago. */
export function freePort(): number {
  const server = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const { port } = server;
  server.stop(true);
  return port;
}

/** The repository's root folder. */
export const repoRoot = new URL("../..", import.meta.url).pathname.replace(/\/$/, "");

/** A process of the service catalog started for a test, on free ports. */
export interface LaunchedProcess {
  child: ChildProcess;
  /** host:port of its gRPC server, for services. */
  grpcAddress: string;
  /** http://127.0.0.1:port of its HTTP side. */
  httpUrl: string;
  /** Stops the process (SIGTERM) and removes what it created (database, Redis keys). */
  cleanup(): Promise<void>;
}

/**
 * Starts one process of the service catalog on free ports with its own test database and
 * Redis key prefix, and waits until /healthz answers 200. `env` adds or overrides variables.
 */
export async function launchProcess(name: ServiceName, env: Record<string, string> = {}): Promise<LaunchedProcess> {
  const entry = serviceEntry(name);
  const grpcPort = freePort();
  const httpPort = freePort();
  const database = entry.database ? testDatabaseUrl(name) : undefined;
  const redis = testRedisPrefix();
  // Processes of one test share a vhost when the test passes AMQP_URL; otherwise one of its own.
  const vhost = entry.messaging && !env.AMQP_URL ? await testVhost() : undefined;
  const child = startProcess({
    name,
    cmd: ["bun", `${repoRoot}/${entry.entry}`],
    cwd: repoRoot,
    env: {
      ...process.env,
      LOG_LEVEL: "info",
      GRPC_PORT: String(grpcPort),
      HTTP_PORT: String(httpPort),
      REDIS_KEY_PREFIX: redis.prefix,
      SHUTDOWN_DRAIN_MS: "200",
      SEED_DEMO_DATA: "true",
      ...(database ? { DATABASE_URL: database.url } : {}),
      ...(vhost ? { AMQP_URL: vhost.url } : {}),
      ...env,
    },
  });
  const httpUrl = `http://127.0.0.1:${env.HTTP_PORT ?? httpPort}`;
  const cleanup = async () => {
    await child.stop();
    await database?.drop();
    await redis.clear();
    await vhost?.drop();
  };
  try {
    await waitForHealthy(child, `${httpUrl}/healthz`);
  } catch (err) {
    await cleanup();
    throw err;
  }
  return { child, grpcAddress: `127.0.0.1:${env.GRPC_PORT ?? grpcPort}`, httpUrl, cleanup };
}
