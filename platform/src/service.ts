import type { DescService } from "@bufbuild/protobuf";
import type { Hono } from "hono";
import { type CacheAsideOptions, CacheAside, connectRedis, type RedisConnection } from "./cache.ts";
import { type Database, type DatabaseOptions, openDatabase } from "./db.ts";
import { Broker } from "./messaging/broker.ts";
import { OutboxRelay } from "./messaging/outbox.ts";
import { ServingStatus } from "./grpc/health.ts";
import { AccessTokenVerifier, type VerifierOptions } from "./auth.ts";
import { GrpcServer, type ServedService, servedService, type ServiceAccess, type ServiceImpl } from "./grpc/server.ts";
import { createHttpApp, serveHttp } from "./http.ts";
import { configureLogging, log, type LogLevel } from "./log.ts";
import { configureMetrics } from "./metrics.ts";
import { shutdownTelemetry, startTelemetry } from "./telemetry.ts";

/** The environment every gRPC service has (see `serviceEnv` in env.ts). */
export interface ServiceHostEnv {
  LOG_LEVEL: LogLevel;
  OTEL_EXPORTER_OTLP_ENDPOINT?: string | undefined;
  SHUTDOWN_DRAIN_MS: number;
  /** Only processes that serve gRPC have one. */
  GRPC_PORT?: number;
  HTTP_PORT: number;
}

/**
 * One call sets a service up (like eShop's ServiceDefaults): {@link startService} configures
 * logging, metrics and tracing; the host then opens the database and cache, takes the RPC
 * handlers, and {@link ServiceHost.listen} starts gRPC (with health and reflection) and the
 * HTTP side (/healthz, /metrics), and installs graceful shutdown on SIGTERM and SIGINT.
 */
export class ServiceHost {
  /** The HTTP app (/healthz, /metrics); a service may add routes, or replace it, before listen(). */
  http: Hono;
  private readonly services: ServedService[] = [];
  private verifier: AccessTokenVerifier | undefined;
  private readonly closers: { what: string; close: () => Promise<void> }[] = [];
  private grpc: GrpcServer | undefined;
  private httpServer: ReturnType<typeof serveHttp> | undefined;
  private stopping: Promise<void> | undefined;

  constructor(
    readonly name: string,
    private readonly env: ServiceHostEnv,
  ) {
    this.http = createHttpApp(this.isServing);
  }

  /** True while the process takes traffic: started, and not shutting down. */
  readonly isServing = (): boolean =>
    !this.stopping && (this.grpc ? this.grpc.health.get("") === ServingStatus.SERVING : this.httpServer !== undefined);

  /** Serves this app instead of the default one; build it on `createHttpApp(host.isServing)`. */
  useHttpApp(app: Hono): this {
    this.http = app;
    return this;
  }

  /** Opens (creating and migrating) the service's database; closed on shutdown. */
  async openDatabase<TSchema extends Record<string, unknown>>(options: DatabaseOptions<TSchema>): Promise<Database<TSchema>> {
    const database = await openDatabase(options).catch((err: unknown) => fail("cannot open the database", err));
    this.closers.push({ what: "database", close: database.close });
    log.info("database ready", { database: database.name });
    return database;
  }

  /** Connects to Redis; closed on shutdown. */
  async connectRedis(url: string, keyPrefix: string): Promise<RedisConnection> {
    const redis = await connectRedis(url, keyPrefix).catch((err: unknown) => fail("cannot connect to Redis", err));
    this.closers.push({ what: "redis", close: redis.close });
    return redis;
  }

  /** Connects to RabbitMQ (recovering from lost connections by itself); closed on shutdown. */
  async connectBroker(url: string): Promise<Broker> {
    const broker = await Broker.connect(url, { service: this.name }).catch((err: unknown) => fail("cannot connect to RabbitMQ", err));
    this.closers.push({ what: "rabbitmq", close: () => broker.close() });
    return broker;
  }

  /** Publishes the service's outbox from now on; stopped on shutdown before the broker closes. */
  startOutboxRelay(db: ConstructorParameters<typeof OutboxRelay>[0], broker: Broker): OutboxRelay {
    const relay = new OutboxRelay(db, broker).start();
    this.closers.push({ what: "outbox relay", close: () => relay.stop() });
    return relay;
  }

  /** A cache-aside cache on a Redis connection. */
  cache<T>(redis: RedisConnection, options: CacheAsideOptions<T>): CacheAside<T> {
    return new CacheAside(redis, options);
  }

  /** Verifies bearer tokens against the identity service's JWKS (see `authEnv`). */
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

  /** Starts the gRPC server (if the process has RPC handlers) and the HTTP server; returns the bound ports. */
  async listen(): Promise<{ grpcPort?: number; httpPort: number }> {
    let grpcPort: number | undefined;
    if (this.services.length) {
      if (this.env.GRPC_PORT === undefined) throw new Error(`${this.name} has RPC handlers but no GRPC_PORT`);
      this.grpc = new GrpcServer(this.services, { verifier: this.verifier });
      grpcPort = await this.grpc.start(this.env.GRPC_PORT);
    }
    this.httpServer = serveHttp(this.http, this.env.HTTP_PORT);
    const httpPort = this.httpServer.port ?? this.env.HTTP_PORT;
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
    log.info("service ready", { grpcPort, httpPort, services: this.services.map((s) => s.service.typeName) });
    return { grpcPort, httpPort };
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

/** Configures logging, metrics and tracing for a service and returns its host. */
export function startService(name: string, env: ServiceHostEnv): ServiceHost {
  configureLogging(name, env.LOG_LEVEL);
  configureMetrics(name);
  startTelemetry({ serviceName: name, otlpEndpoint: env.OTEL_EXPORTER_OTLP_ENDPOINT });
  process.on("unhandledRejection", (err) => log.error("unhandled rejection", { err }));
  return new ServiceHost(name, env);
}
