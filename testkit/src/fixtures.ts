import { readFileSync } from "node:fs";
import type { DescService } from "@bufbuild/protobuf";
import { createClient as createRedisClient } from "redis";
import { z } from "zod";
import { AccessTokenVerifier } from "@bazaar/platform/auth";
import { dropDatabase } from "@bazaar/platform/db";
import { withDatabase } from "@bazaar/platform/database-url";
import { RpcError } from "@bazaar/platform/errors";
import { type ClientOptions, createClient, type GrpcClient } from "@bazaar/platform/grpc/client";
import { GrpcServer, type ServiceAccess, type ServiceImpl, servedService } from "@bazaar/platform/grpc/server";
import { deleteVhost, ensureVhost } from "@bazaar/platform/messaging/vhost";
import { parseEnv } from "@bazaar/platform/env";
import { type ChildProcess, startProcess, waitForHealthy } from "@bazaar/platform/processes";
import { infrastructureDefaults, repositoryRoot, type ServiceName, serviceEntry } from "@bazaar/platform/service-catalog";
import { field, pageSize, text, validate } from "@bazaar/platform/validation";
import type { IdentityService, Tokens, User } from "@bazaar/proto/bazaar/identity/v1/identity_pb";
import { NotificationsService } from "@bazaar/proto/bazaar/notifications/v1/notifications_pb";
import { startTestIssuer, type TestIssuer } from "./test-issuer.ts";

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

/** A new customer's account and sign-in: what {@link registerAndLogin} gives back. */
export interface SignedUp {
  email: string;
  password: string;
  user: User;
  tokens: Tokens;
}

/**
 * Signs a new customer up and in, as a shopper does: Register (which answers alike whether or
 * not the email was free, so it returns nothing to sign in with), then Login. The email is
 * unique unless given.
 */
export async function registerAndLogin(
  identity: Pick<GrpcClient<typeof IdentityService>, "register" | "login">,
  options: { email?: string; password?: string; displayName?: string; metadata?: Record<string, string> } = {},
): Promise<SignedUp> {
  const email = options.email ?? `${uniqueName("buyer")}@example.com`;
  const password = options.password ?? "correct horse battery";
  const call = options.metadata ? { metadata: options.metadata } : {};
  await identity.register({ email, password, displayName: options.displayName ?? "Test Buyer" }, call);
  const { user, tokens } = await identity.login({ email, password }, call);
  if (!user || !tokens) throw new Error(`Login after Register answered without ${user ? "tokens" : "a user"}`);
  return { email, password, user, tokens };
}

/**
 * A database URL for a fresh, uniquely named database (created by the code under test), on the
 * machine's Postgres or on `serverUrl`'s.
 */
export function testDatabaseUrl(service: string, serverUrl = testEnv.POSTGRES_URL): { url: string; drop: () => Promise<void> } {
  const url = withDatabase(serverUrl, uniqueName(`bazaar_${service}_test`));
  return { url, drop: () => dropDatabase(url) };
}

/** Deletes every Redis key that starts with `prefix`; resolves with how many it deleted. */
export async function clearRedisPrefix(prefix: string, url = testEnv.REDIS_URL): Promise<number> {
  const client = createRedisClient({ url });
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

/** A unique Redis key prefix, and a function that deletes every key under it (on the machine's Redis or `url`'s). */
export function testRedisPrefix(url = testEnv.REDIS_URL): { prefix: string; clear: () => Promise<number> } {
  const prefix = `${uniqueName("bazaar_test")}:`;
  return { prefix, clear: () => clearRedisPrefix(prefix, url) };
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

/** The kernel's range of ports for outgoing connections (any of which may be taken at any moment). */
export function ephemeralPorts(): [number, number] {
  let text = "32768 60999";
  try {
    text = readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "latin1");
  } catch {
    // not Linux: assume its default range
  }
  const [lo, hi] = text.trim().split(/\s+/).map(Number);
  return [lo ?? 32768, hi ?? 60999];
}

/** True when nothing listens on `port` on any local address (we can bind it ourselves). */
export function portIsFree(port: number): boolean {
  // Binding the wildcard fails if anything holds the port on any address (a process started
  // with BIND_HOST=0.0.0.0 as well as one on loopback).
  for (const hostname of ["0.0.0.0", "127.0.0.1"]) {
    try {
      const server = Bun.listen({ hostname, port, socket: { data() {} } });
      server.stop(true);
    } catch {
      return false;
    }
  }
  return true;
}

/** Every port {@link freePort} has handed out in this process: a port picked for a process not yet started is still free. */
const handedOut = new Set<number>();

/**
 * A TCP port that was free a moment ago, below the kernel's ephemeral range, and never handed
 * out before in this process: a port the kernel hands out (port 0) can be taken by any outgoing
 * connection (a service's own Postgres or Redis connections) between this pick and the
 * process's bind, and a random pick may repeat one given to a process that has not bound it yet
 * (a platform of 17 processes picks 40 ports at once), either of which made a test's service
 * fail with "the port is in use".
 */
export function freePort(): number {
  const [lo] = ephemeralPorts();
  for (let i = 0; i < 200 && lo > 10_001; i++) {
    const port = 10_000 + Math.floor(Math.random() * (lo - 10_000));
    if (!handedOut.has(port) && portIsFree(port)) {
      handedOut.add(port);
      return port;
    }
  }
  const server = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const { port } = server;
  server.stop(true);
  handedOut.add(port);
  return port;
}

/** GETs `url` expecting JSON; any other answer than a 2xx is an error showing the status and body. */
export async function getJson<T>(url: string): Promise<T> {
  const res = await fetch(url, { headers: { accept: "application/json" } });
  if (!res.ok) throw new Error(`GET ${url} answered ${res.status}: ${await res.text()}`);
  return (await res.json()) as T;
}

/** The repository's root folder (the catalog knows where it is). */
export const repoRoot = repositoryRoot;

/** What a process of the service catalog started by a test is given (see {@link startTestProcess}). */
export interface TestProcessSettings {
  grpcPort: number;
  httpPort: number;
  /** The Redis key prefix of its own. */
  redisPrefix: string;
  /** Its metrics port, for processes the catalog gives one (the BFF). */
  metricsPort?: number;
  /** Its database, for services that have one. */
  databaseUrl?: string;
  /** The RabbitMQ vhost URL, for processes that use messaging. */
  amqpUrl?: string;
  /** How long it keeps serving after SIGTERM while health says NOT_SERVING. */
  shutdownDrainMs: number;
  /** More variables, or overrides of the ones above (e.g. peers' addresses, JWKS_URL). */
  env?: Record<string, string>;
}

/**
 * Starts one process of the service catalog for a test, with the demo data seeded and INFO
 * logs, on the ports and resources given; does not wait for it to be healthy.
 */
export function startTestProcess(name: ServiceName, settings: TestProcessSettings): ChildProcess {
  return startProcess({
    name,
    cmd: ["bun", `${repoRoot}/${serviceEntry(name).entry}`],
    cwd: repoRoot,
    env: {
      ...process.env,
      LOG_LEVEL: "info",
      GRPC_PORT: String(settings.grpcPort),
      HTTP_PORT: String(settings.httpPort),
      ...(settings.metricsPort !== undefined ? { METRICS_PORT: String(settings.metricsPort) } : {}),
      REDIS_KEY_PREFIX: settings.redisPrefix,
      SHUTDOWN_DRAIN_MS: String(settings.shutdownDrainMs),
      SEED_DEMO_DATA: "true",
      ...(settings.databaseUrl ? { DATABASE_URL: settings.databaseUrl } : {}),
      ...(settings.amqpUrl ? { AMQP_URL: settings.amqpUrl } : {}),
      ...settings.env,
    },
  });
}

/** A process of the service catalog started for a test, on free ports. */
export interface LaunchedProcess {
  child: ChildProcess;
  /** host:port of its gRPC server, for services. */
  grpcAddress: string;
  /** http://127.0.0.1:port of its HTTP side. */
  httpUrl: string;
  /** http://127.0.0.1:port where it serves /metrics: its metrics port, or its HTTP side. */
  metricsUrl: string;
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
  const metricsPort = entry.metricsPort !== undefined ? freePort() : undefined;
  const database = entry.database ? testDatabaseUrl(name) : undefined;
  const redis = testRedisPrefix();
  // Processes of one test share a vhost when the test passes AMQP_URL; otherwise one of its own.
  const vhost = entry.messaging && !env.AMQP_URL ? await testVhost() : undefined;
  const child = startTestProcess(name, {
    grpcPort,
    httpPort,
    metricsPort,
    redisPrefix: redis.prefix,
    databaseUrl: database?.url,
    amqpUrl: vhost?.url,
    shutdownDrainMs: 200,
    env,
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
  const metricsUrl = metricsPort === undefined ? httpUrl : `http://127.0.0.1:${env.METRICS_PORT ?? metricsPort}`;
  return { child, grpcAddress: `127.0.0.1:${env.GRPC_PORT ?? grpcPort}`, httpUrl, metricsUrl, cleanup };
}

/**
 * Awaits a call that must fail and returns its {@link RpcError}, to check the status code and
 * message. A call that succeeds, or fails with anything but an RpcError, fails the test.
 */
export async function rpcError(call: Promise<unknown>): Promise<RpcError> {
  try {
    await call;
  } catch (err) {
    if (err instanceof RpcError) return err;
    throw err;
  }
  throw new Error("the call succeeded but was expected to fail");
}

/** Call options carrying an access token, as the clients' second argument. */
export interface BearerAuth {
  metadata: { authorization: string };
}

/** Call options that send `token` as the bearer token. */
export function bearer(token: string): BearerAuth {
  return { metadata: { authorization: `Bearer ${token}` } };
}

/** Options of {@link startTestGrpcServer}. */
export interface TestGrpcServerOptions<S extends DescService> {
  /** The service, its handlers and who may call each RPC, as a service's main.ts registers them. */
  service: S;
  impl: ServiceImpl<S>;
  access: ServiceAccess<S>;
  /** Options of the client, e.g. a longer default deadline. */
  clientOptions?: ClientOptions;
}

/** A service served in process for a test, with a client of it. */
export interface TestGrpcServer<S extends DescService> {
  /** A client of the service (closed by `stop`). */
  client: GrpcClient<S>;
  /** host:port the server listens on. */
  address: string;
  /** Closes the client, shuts the server down without draining, and stops an issuer it started. */
  stop(): Promise<void>;
}

/** A {@link TestGrpcServer} that accepts the tokens of a test issuer. */
export interface TestGrpcServerWithIssuer<S extends DescService> extends TestGrpcServer<S> {
  /** The issuer whose tokens the server accepts (for bad tokens of every kind). */
  issuer: TestIssuer;
  /** Call options carrying a valid token of the issuer's for these claims (roles default to customer). */
  auth(claims: { sub: string; roles?: string[] }): Promise<BearerAuth>;
}

/**
 * Serves one service's handlers on a real gRPC server on a free local port, with Bazaar's
 * interceptors, and makes a client of it. Tokens are verified against a test issuer: the one
 * given (which the caller stops), or one of its own (stopped by `stop`). A service that checks
 * tokens with keys of its own (identity) passes its `verifier` instead, and gets no issuer.
 */
export async function startTestGrpcServer<S extends DescService>(
  options: TestGrpcServerOptions<S> & { verifier: AccessTokenVerifier },
): Promise<TestGrpcServer<S>>;
export async function startTestGrpcServer<S extends DescService>(
  options: TestGrpcServerOptions<S> & { issuer?: TestIssuer },
): Promise<TestGrpcServerWithIssuer<S>>;
export async function startTestGrpcServer<S extends DescService>(
  options: TestGrpcServerOptions<S> & { verifier?: AccessTokenVerifier; issuer?: TestIssuer },
): Promise<TestGrpcServer<S> | TestGrpcServerWithIssuer<S>> {
  const ownIssuer = options.verifier || options.issuer ? undefined : await startTestIssuer();
  const issuer = options.issuer ?? ownIssuer;
  const verifier = options.verifier ?? (issuer && new AccessTokenVerifier(issuer));
  let server: GrpcServer;
  let address: string;
  try {
    server = new GrpcServer([servedService(options.service, options.impl, options.access)], { verifier });
    address = `127.0.0.1:${await server.start(0, "127.0.0.1")}`;
  } catch (err) {
    ownIssuer?.stop();
    throw err;
  }
  const client = createClient(options.service, address, options.clientOptions);
  const stop = async () => {
    client.close();
    await server.shutdown({ drainMs: 0 });
    ownIssuer?.stop();
  };
  if (!issuer) return { client, address, stop };
  return { client, address, stop, issuer, auth: async (claims) => bearer(await issuer.token(claims)) };
}

/**
 * A NotificationsService served for tests of how field violations travel (server trailer,
 * client, BFF): ListNotifications checks two fields, page_size (the platform's page size) and
 * page_token (at most 8 characters), and answers an empty page; MarkRead fails with
 * `markReadError`.
 */
export function startViolationsTestServer(markReadError: Error): Promise<TestGrpcServerWithIssuer<typeof NotificationsService>> {
  return startTestGrpcServer({
    service: NotificationsService,
    access: { listNotifications: "public", markRead: "public" },
    impl: {
      listNotifications(req) {
        validate({ size: field("page_size", req.pageSize, pageSize), token: field("page_token", req.pageToken, text({ max: 8 })) });
        return {};
      },
      markRead() {
        throw markReadError;
      },
    },
  });
}
