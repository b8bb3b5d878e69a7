import type { DescService } from "@bufbuild/protobuf";
import type { Hono } from "hono";
import type { CacheAside, CacheAsideOptions, RedisConnection } from "./cache.ts";
import { type Database, type DatabaseOptions, openDatabase } from "./db.ts";
import { Broker } from "./messaging/broker.ts";
import { OutboxRelay } from "./messaging/outbox.ts";
import { ServingStatus } from "./grpc/health.ts";
import { AccessTokenVerifier, type VerifierOptions } from "./auth.ts";
import { GrpcServer, type ServedService, servedService, type ServiceAccess, type ServiceImpl } from "./grpc/server.ts";
import { createHttpApp, createMetricsApp, serveHttp } from "./http.ts";
import { joinHostPort, loopback } from "./host-port.ts";
import { configureLogging, log, type LogLevel } from "./log.ts";
import { configureMetrics } from "./metrics.ts";
import { Readiness } from "./readiness.ts";
import { repositoryRoot } from "./service-catalog.ts";
import { shutdownTelemetry, startTelemetry } from "./telemetry.ts";

/**
 * The Redis half of the chassis (./cache.ts and node-redis), loaded by the first
 * {@link ServiceHost.connectRedis}: node-redis alone costs a process about 13 MB, which the
 * services that keep nothing in Redis need not carry.
 */
let cacheModule: typeof import("./cache.ts") | undefined;

/**
 * The environment a service host reads (see `serviceEnv`, `redisEnv`, `amqpEnv` and `authEnv`
 * in env.ts): what a process's env.ts declares, the host uses as its defaults.
 */
export interface ServiceHostEnv {
  LOG_LEVEL: LogLevel;
  OTEL_EXPORTER_OTLP_ENDPOINT?: string | undefined;
  SHUTDOWN_DRAIN_MS: number;
  /** The address every server of the process binds (commonEnv's BIND_HOST); loopback if unset. */
  BIND_HOST?: string;
  /** Only processes that serve gRPC have one. */
  GRPC_PORT?: number;
  HTTP_PORT: number;
  /** A port of its own for /metrics (the BFF's); without one, /metrics is on HTTP_PORT. */
  METRICS_PORT?: number;
  /** The database {@link ServiceHost.openDatabase} opens unless told another. */
  DATABASE_URL?: string;
  /** Redis, for {@link ServiceHost.connectRedis}. */
  REDIS_URL?: string;
  REDIS_KEY_PREFIX?: string;
  /** RabbitMQ, for {@link ServiceHost.connectBroker} and {@link ServiceHost.useOutbox}. */
  AMQP_URL?: string;
}

/** The token settings of `authEnv`, from which {@link startService} configures verification. */
export interface AuthHostEnv {
  JWKS_URL: string;
  JWT_ISSUER: string;
  JWT_AUDIENCE: string;
  /** How long the JWKS is cached; 300 s unless given. */
  JWKS_CACHE_SECONDS?: number;
}

/** What {@link ServiceHost.openDatabase} takes: the URL and migrations default by convention. */
export type HostDatabaseOptions<TSchema extends Record<string, unknown>> = Omit<DatabaseOptions<TSchema>, "url" | "migrationsFolder"> &
  Partial<Pick<DatabaseOptions<TSchema>, "url" | "migrationsFolder">>;

/**
 * One call sets a service up (like eShop's ServiceDefaults): {@link startService} configures
 * logging, metrics and tracing; the host then opens the database and cache, takes the RPC
 * handlers, and {@link ServiceHost.listen} starts gRPC (with health and reflection) and the
 * HTTP side (/healthz, /metrics) on BIND_HOST, and installs graceful shutdown on SIGTERM and SIGINT.
 */
export class ServiceHost {
  /** The HTTP app (/healthz, /metrics); a service may add routes, or replace it, before listen(). */
  http: Hono;
  private readonly services: ServedService[] = [];
  private verifier: AccessTokenVerifier | undefined;
  private readonly closers: { what: string; close: () => Promise<void> }[] = [];
  private broker: Promise<Broker> | undefined;
  private grpc: GrpcServer | undefined;
  private httpServer: ReturnType<typeof serveHttp> | undefined;
  private metricsServer: ReturnType<typeof serveHttp> | undefined;
  private stopping: Promise<void> | undefined;
  /** Whether the databases and Redis it uses answer: see {@link Readiness}. */
  readonly readiness = new Readiness();

  constructor(
    readonly name: string,
    private readonly env: ServiceHostEnv,
  ) {
    this.http = createHttpApp(this.isServing, { dependencies: this.readiness.report });
  }

  /** True while the process takes traffic: started, its required dependencies answer, and not shutting down. */
  readonly isServing = (): boolean => !this.stopping && this.readiness.ready && (this.grpc !== undefined || this.httpServer !== undefined);

  /** Serves this app instead of the default one; build it on `createHttpApp(host.isServing)`. */
  useHttpApp(app: Hono): this {
    this.http = app;
    return this;
  }

  /**
   * Opens (creating and migrating) the service's database; closed on shutdown. By default the
   * database is DATABASE_URL's and the migrations are the committed ones in `services/<name>/drizzle`.
   */
  async openDatabase<TSchema extends Record<string, unknown>>(options: HostDatabaseOptions<TSchema>): Promise<Database<TSchema>> {
    const url = options.url ?? this.env.DATABASE_URL;
    if (url === undefined) throw new Error(`${this.name} opens a database but its environment has no DATABASE_URL (serviceEnv declares it)`);
    const migrationsFolder = options.migrationsFolder ?? `${repositoryRoot}/services/${this.name}/drizzle`;
    const database = await openDatabase({ ...options, url, migrationsFolder }).catch((err: unknown) => fail("cannot open the database", err));
    this.closers.push({ what: "database", close: database.close });
    this.readiness.add("postgres", database.ping);
    log.info("database ready", { database: database.name });
    return database;
  }

  /**
   * Connects to Redis at REDIS_URL, keys under REDIS_KEY_PREFIX; closed on shutdown. Redis is
   * a required dependency (NOT_SERVING while it is down) unless told `required: false`, for a
   * process that only caches in it.
   */
  async connectRedis(options: { required?: boolean } = {}): Promise<RedisConnection> {
    const { REDIS_URL, REDIS_KEY_PREFIX } = this.env;
    if (REDIS_URL === undefined || REDIS_KEY_PREFIX === undefined)
      throw new Error(`${this.name} uses Redis but its environment has no REDIS_URL (redisEnv declares it)`);
    cacheModule ??= await import("./cache.ts");
    const redis = await cacheModule.connectRedis(REDIS_URL, REDIS_KEY_PREFIX).catch((err: unknown) => fail("cannot connect to Redis", err));
    this.closers.push({ what: "redis", close: redis.close });
    this.readiness.add("redis", () => redis.client.ping(), options);
    return redis;
  }

  /**
   * The process's one RabbitMQ connection, to AMQP_URL (recovering from lost connections by
   * itself): connected on the first call, the same broker after; closed on shutdown.
   */
  connectBroker(): Promise<Broker> {
    this.broker ??= (async () => {
      const url = this.env.AMQP_URL;
      if (url === undefined) throw new Error(`${this.name} uses RabbitMQ but its environment has no AMQP_URL (amqpEnv declares it)`);
      const broker = await Broker.connect(url, { service: this.name }).catch((err: unknown) => fail("cannot connect to RabbitMQ", err));
      this.closers.push({ what: "rabbitmq", close: () => broker.close() });
      return broker;
    })();
    return this.broker;
  }

  /**
   * Publishes the service's outbox (in `database`) from now on, over the process's broker
   * connection; the relay stops on shutdown before the broker closes. Stores take the relay
   * as their `OutboxSignal`, waking it after each commit that enqueued events.
   */
  async useOutbox(database: Pick<Database<Record<string, unknown>>, "db">): Promise<OutboxRelay> {
    const relay = new OutboxRelay(database.db, await this.connectBroker()).start();
    this.closers.push({ what: "outbox relay", close: () => relay.stop() });
    return relay;
  }

  /** A cache-aside cache on a Redis connection (from {@link connectRedis}). */
  cache<T>(redis: RedisConnection, options: CacheAsideOptions<T>): CacheAside<T> {
    if (!cacheModule) throw new Error("cache() takes a connection from connectRedis(), which was not called");
    return new cacheModule.CacheAside(redis, options);
  }

  /**
   * Verifies bearer tokens on the gRPC server with these settings. {@link startService} calls it
   * with `authEnv`'s unless told `auth: false`; identity calls it with its own key set.
   */
  useAuth(options: VerifierOptions): this {
    this.verifier = new AccessTokenVerifier(options);
    return this;
  }

  /** Registers the handlers of a protobuf-es service, with who may call each RPC. */
  addGrpc<S extends DescService>(service: S, impl: ServiceImpl<S>, access: ServiceAccess<S>): this {
    this.services.push(servedService(service, impl, access));
    return this;
  }

  /** Runs `close` on shutdown, after the servers stop and before the database closes. */
  onShutdown(what: string, close: () => Promise<void>): void {
    this.closers.push({ what, close });
  }

  /**
   * Starts the gRPC server (if the process has RPC handlers), the HTTP server and, with a
   * METRICS_PORT, the metrics server, all on BIND_HOST; returns the bound ports.
   */
  async listen(): Promise<{ grpcPort?: number; httpPort: number; metricsPort?: number }> {
    const bindHost = this.env.BIND_HOST ?? loopback;
    const { GRPC_PORT, HTTP_PORT, METRICS_PORT } = this.env;
    let grpcPort: number | undefined;
    if (this.services.length) {
      if (GRPC_PORT === undefined) throw new Error(`${this.name} has RPC handlers but no GRPC_PORT`);
      const grpc = new GrpcServer(this.services, { verifier: this.verifier });
      this.grpc = grpc;
      grpcPort = await listenOrFail("gRPC", bindHost, GRPC_PORT, () => grpc.start(GRPC_PORT, bindHost));
    }
    this.httpServer = await listenOrFail("HTTP", bindHost, HTTP_PORT, () => serveHttp(this.http, HTTP_PORT, bindHost));
    const httpPort = this.httpServer.port ?? HTTP_PORT;
    let metricsPort: number | undefined;
    if (METRICS_PORT !== undefined) {
      this.metricsServer = await listenOrFail("metrics", bindHost, METRICS_PORT, () => serveHttp(createMetricsApp(), METRICS_PORT, bindHost));
      metricsPort = this.metricsServer.port ?? METRICS_PORT;
    }
    this.readiness.onChange((ready) => {
      if (!this.stopping) this.grpc?.health.setAll(ready ? ServingStatus.SERVING : ServingStatus.NOT_SERVING);
    });
    this.readiness.start();
    this.onShutdown("readiness checks", () => this.readiness.stop());
    for (const signal of ["SIGTERM", "SIGINT"] as const) {
      process.on(signal, () => {
        log.info("shutting down", { signal });
        void this.stop().then(
          () => process.exit(0),
          (err: unknown) => {
            log.error("shutdown failed", { err });
            process.exit(1);
          },
        );
      });
    }
    log.info("service ready", { bindHost, grpcPort, httpPort, metricsPort, services: this.services.map((s) => s.service.typeName) });
    return { grpcPort, httpPort, metricsPort };
  }

  /**
   * Stops the HTTP server, letting responses in progress finish for a few seconds; long-lived
   * ones (server-sent events) are then cut, so one open stream cannot hold shutdown forever.
   */
  private async stopHttp(graceMs = 5_000): Promise<void> {
    const server = this.httpServer;
    if (!server) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const forced = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        log.warn("HTTP responses still open after the grace period; closing them", { graceMs });
        void server.stop(true).then(resolve);
      }, graceMs);
    });
    await Promise.race([server.stop(), forced]);
    clearTimeout(timer);
  }

  /**
   * Graceful shutdown: health NOT_SERVING, a drain period, in-flight calls finish, servers
   * close, then resources close in reverse order of opening and buffered spans are sent.
   */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      if (this.grpc) await this.grpc.shutdown({ drainMs: this.env.SHUTDOWN_DRAIN_MS });
      // HTTP-only processes drain too: /healthz answers 503 from now on.
      else await Bun.sleep(this.env.SHUTDOWN_DRAIN_MS);
      await this.stopHttp();
      await this.metricsServer?.stop(true);
      for (const { what, close } of this.closers.reverse()) {
        await close().catch((err: unknown) => log.warn(`closing ${what} failed`, { err }));
      }
      log.info("stopped");
      await shutdownTelemetry();
    })();
    return this.stopping;
  }
}

/** Ends a process that cannot start, with a message that says what it could not reach. */
function fail(what: string, err: unknown): never {
  log.error(`${what}: ${(err as Error).message}`);
  process.exit(1);
}

/**
 * Starts one server, or ends the process if it cannot bind its address. A port in use is the
 * usual reason (an older copy of the process, another program) and grpc-js buries it in "No
 * address added…"; the message says it in words and how to find the holder.
 */
async function listenOrFail<T>(server: string, host: string, port: number, start: () => T | Promise<T>): Promise<T> {
  try {
    return await start();
  } catch (err) {
    const { code, message } = err as Error & { code?: string };
    const inUse = code === "EADDRINUSE" || message.includes("EADDRINUSE");
    fail(
      `${server} cannot listen on ${joinHostPort(host, port)}`,
      inUse ? new Error(`the port is in use by another process (\`ss -ltnp 'sport = :${port}'\` shows which)`) : err,
    );
  }
}

/** Options of {@link startService}. */
export interface StartServiceOptions {
  /**
   * False: do not verify bearer tokens with `authEnv`'s settings. For processes that verify
   * them otherwise (identity, against its own keys, with useAuth) or take none (the BFF).
   */
  auth?: boolean;
}

/**
 * Configures logging, metrics and tracing for a service and returns its host, which verifies
 * bearer tokens against JWKS_URL, JWT_ISSUER and JWT_AUDIENCE unless `options.auth` is false.
 */
export function startService(name: string, env: ServiceHostEnv & AuthHostEnv, options?: StartServiceOptions & { auth?: true }): ServiceHost;
export function startService(name: string, env: ServiceHostEnv, options: StartServiceOptions & { auth: false }): ServiceHost;
export function startService(name: string, env: ServiceHostEnv & Partial<AuthHostEnv>, options: StartServiceOptions = {}): ServiceHost {
  const { JWKS_URL, JWT_ISSUER, JWT_AUDIENCE, JWKS_CACHE_SECONDS } = env;
  const auth = options.auth !== false;
  if (auth && (!JWKS_URL || !JWT_ISSUER || !JWT_AUDIENCE)) {
    throw new Error(`${name} verifies tokens but its environment lacks JWKS_URL, JWT_ISSUER or JWT_AUDIENCE (authEnv declares them)`);
  }
  configureLogging(name, env.LOG_LEVEL);
  configureMetrics(name);
  startTelemetry({ serviceName: name, otlpEndpoint: env.OTEL_EXPORTER_OTLP_ENDPOINT });
  process.on("unhandledRejection", (err) => log.error("unhandled rejection", { err }));
  const host = new ServiceHost(name, env);
  if (auth && JWKS_URL && JWT_ISSUER && JWT_AUDIENCE)
    host.useAuth({ jwksUrl: JWKS_URL, jwksCacheSeconds: JWKS_CACHE_SECONDS, issuer: JWT_ISSUER, audience: JWT_AUDIENCE });
  return host;
}
