import { create, type DescMessage, type DescService, type Message, type MessageInitShape, type MessageShape } from "@bufbuild/protobuf";
import { Server, status, ServerCredentials, type sendUnaryData, type ServerUnaryCall, type UntypedServiceImplementation } from "@grpc/grpc-js";
import { Health } from "@bazaar/proto/grpc/health/v1/health_pb";
import { RpcError } from "../errors.ts";
import { joinHostPort, loopback } from "../host-port.ts";
import { log } from "../log.ts";
import { HealthService, ServingStatus } from "./health.ts";
import type { Access, AccessTokenVerifier } from "../auth.ts";
import { authInterceptor, type CallContext, runIntercepted, type ServerInterceptor, serverInterceptors } from "./interceptors.ts";
import { ReflectionIndex, reflectionServices } from "./reflection.ts";
import { decodeRequest, MalformedRequest, serverServiceDefinition } from "./definition.ts";
import { malformedRequestInterceptor, requestArrivalInterceptor, resetUnfinishedStreamInterceptor } from "./call-limits.ts";
import { statusTrailers } from "./status-details.ts";

/** A unary RPC handler: gets the decoded request, returns the response (or throws). */
export type UnaryHandler<I extends DescMessage, O extends DescMessage> = (
  request: MessageShape<I>,
  ctx: CallContext,
) => Promise<MessageInitShape<O>> | MessageInitShape<O>;

/** Who may call each RPC of a service: every RPC must be listed. */
export type ServiceAccess<S extends DescService> = { [K in keyof S["method"]]: Access };

/**
 * The implementation of a protobuf-es service: one handler per RPC, typed by the generated
 * descriptor, so a missing RPC or a wrong response shape is a compile error.
 */
export type ServiceImpl<S extends DescService> = {
  [K in keyof S["method"]]: S["method"][K] extends { methodKind: "unary"; input: infer I extends DescMessage; output: infer O extends DescMessage }
    ? UnaryHandler<I, O>
    : never;
};

/** A service to serve: its descriptor, handlers and who may call each RPC. */
export interface ServedService {
  service: DescService;
  impl: ServiceImpl<DescService>;
  /** The access level of every RPC, by method localName. */
  access: Record<string, Access>;
}

/**
 * A service to serve, typed by its descriptor (a missing RPC or access level is a compile
 * error), in the form {@link GrpcServer} takes.
 */
export function servedService<S extends DescService>(service: S, impl: ServiceImpl<S>, access: ServiceAccess<S>): ServedService {
  return { service, impl: impl as unknown as ServiceImpl<DescService>, access: access as Record<string, Access> };
}

/** Options of {@link GrpcServer}. */
export interface GrpcServerOptions {
  /** Verifies bearer tokens; without one, only "public" RPCs can be called. */
  verifier?: AccessTokenVerifier;
  /** The deadline of calls whose client set none, in milliseconds. */
  defaultDeadlineMs?: number;
  /** Largest request message accepted, in bytes; a larger one is refused RESOURCE_EXHAUSTED before it is read. */
  maxRequestBytes?: number;
  /** How long a call may take to send its request message after its headers, in milliseconds. */
  requestArrivalMs?: number;
  /** Most calls open at once on one connection (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS). */
  maxConcurrentStreams?: number;
  /** A connection with no call open for this long is closed (with GOAWAY), in milliseconds. */
  maxConnectionIdleMs?: number;
  /**
   * A connection is told to go away (GOAWAY) after this long, ±10 %, in milliseconds; the calls
   * still open on it get `maxConnectionAgeGraceMs` more, then the connection is closed. The one
   * bound on a streaming call (reflection, health Watch) whose client keeps it open.
   */
  maxConnectionAgeMs?: number;
  /** See `maxConnectionAgeMs`. */
  maxConnectionAgeGraceMs?: number;
  /** The server pings a connection after this long without activity, and closes it if the ping is not answered, in milliseconds. */
  keepaliveTimeMs?: number;
  /** The interceptor chain; the documented default order unless a test needs another. */
  interceptors?: readonly ServerInterceptor[];
}

/**
 * The limits of every gRPC server, each a bound on what one unauthenticated client can hold or
 * make the server do (see {@link GrpcServerOptions} for what each means):
 * - 64 KiB per request: the largest legitimate request (a CreateProduct at every field's limit:
 *   a 2,000-character description, 500-character image URL, 120-character name) is under
 *   10 KiB, and decoding 64 KiB of garbage costs milliseconds, where grpc-js's default of
 *   4 MiB cost up to a second of blocked event loop per message;
 * - 5 s for the request message to arrive: clients send it right after the headers;
 * - 256 calls at once per connection: the BFF's busiest channel stays well below it;
 * - idle connections closed after 5 minutes, and dead peers found by a ping after 2;
 * - every connection renewed after 30 minutes (callers reconnect at once, which also spreads
 *   them over new replicas), with a minute for the calls still open on it.
 */
export const grpcServerLimits = {
  maxRequestBytes: 64 * 1024,
  requestArrivalMs: 5_000,
  maxConcurrentStreams: 256,
  maxConnectionIdleMs: 5 * 60_000,
  keepaliveTimeMs: 2 * 60_000,
  maxConnectionAgeMs: 30 * 60_000,
  maxConnectionAgeGraceMs: 60_000,
} satisfies Partial<GrpcServerOptions>;

/**
 * A gRPC server on grpc-js for protobuf-es services, with the standard health and reflection
 * services and Bazaar's interceptors. Health reports NOT_SERVING until {@link start} binds.
 */
export class GrpcServer {
  readonly health: HealthService;
  private readonly server: Server;
  private readonly services: DescService[] = [];
  private readonly verifier: AccessTokenVerifier | undefined;
  private readonly pending: [DescService, UntypedServiceImplementation][] = [];
  private readonly defaultDeadlineMs: number;
  private readonly interceptors: readonly ServerInterceptor[];

  constructor(services: readonly ServedService[], options: GrpcServerOptions = {}) {
    this.verifier = options.verifier;
    this.defaultDeadlineMs = options.defaultDeadlineMs ?? 10_000;
    this.interceptors = options.interceptors ?? serverInterceptors;
    const limits = { ...grpcServerLimits, ...definedOnly(options) };
    this.server = new Server({
      "grpc.max_receive_message_length": limits.maxRequestBytes,
      "grpc.max_concurrent_streams": limits.maxConcurrentStreams,
      "grpc.max_connection_idle_ms": limits.maxConnectionIdleMs,
      "grpc.max_connection_age_ms": limits.maxConnectionAgeMs,
      "grpc.max_connection_age_grace_ms": limits.maxConnectionAgeGraceMs,
      "grpc.keepalive_time_ms": limits.keepaliveTimeMs,
      "grpc.keepalive_timeout_ms": 20_000,
      // Clients that ping more often than this are told to go away instead of wasting CPU.
      "grpc.http2.min_ping_interval_without_data_ms": 10_000,
      // grpc-js's own interceptors, innermost first: the stream reset needs the innermost call.
      interceptors: [resetUnfinishedStreamInterceptor, requestArrivalInterceptor(limits.requestArrivalMs), malformedRequestInterceptor],
    });
    for (const { service, impl, access } of services) {
      this.services.push(service);
      this.pending.push([service, this.unaryImplementation(service, impl, access)]);
    }
    this.health = new HealthService(this.services.map((s) => s.typeName));
    this.pending.push([Health, this.health.implementation()]);
    // Reflection lists every service, method and message of the process to whoever asks: it is
    // for tools inside the trust boundary (grpcurl on the developer's machine or the container
    // network). The gateway passes it only with a valid access token (jwtAuthn in
    // gateway/envoy-config.ts), and servers bind loopback unless BIND_HOST says otherwise.
    const reflection = new ReflectionIndex([...this.services, Health, ...reflectionServices]);
    this.pending.push(...reflection.implementations());
    // Bazaar's services get their requests undecoded, to check the caller first (see unaryImplementation).
    for (const [service, impl] of this.pending)
      this.server.addService(serverServiceDefinition(service, this.services.includes(service) ? "raw" : "decoded"), impl);
  }

  private unaryImplementation(service: DescService, impl: ServiceImpl<DescService>, access: Record<string, Access>): UntypedServiceImplementation {
    const out: UntypedServiceImplementation = {};
    const interceptors = [...this.interceptors, authInterceptor(this.verifier, access)];
    for (const method of service.methods) {
      const handler = impl[method.localName] as UnaryHandler<DescMessage, DescMessage> | undefined;
      if (method.methodKind !== "unary" || !handler) {
        throw new Error(`${service.typeName}/${method.name}: only unary RPCs with a handler are supported`);
      }
      if (!access[method.localName]) throw new Error(`${service.typeName}/${method.name} has no access level`);
      const methodLog = log.child({ rpc: `${service.typeName}/${method.name}` });
      out[method.localName] = (call: ServerUnaryCall<Uint8Array, Message>, callback: sendUnaryData<Message>) => {
        const clientDeadline = call.getDeadline();
        const deadline =
          clientDeadline instanceof Date ? clientDeadline : new Date(Number.isFinite(clientDeadline) ? clientDeadline : Date.now() + this.defaultDeadlineMs);
        const controller = new AbortController();
        const timer = setTimeout(() => controller.abort(new Error("deadline exceeded")), Math.max(0, deadline.getTime() - Date.now()));
        call.on("cancelled", () => controller.abort(new Error("cancelled by the client")));
        const ctx: CallContext = {
          method,
          metadata: call.metadata,
          deadline,
          signal: controller.signal,
          peer: call.getPeer(),
          log: methodLog,
          principal: undefined,
        };
        // The request arrives as bytes and is decoded innermost, after the auth interceptor: a caller
        // without a token cannot make a service spend CPU on a body it would refuse anyway.
        const serve = async () => {
          const request = decodeRequest(method, call.request);
          if (request instanceof MalformedRequest) throw new RpcError(status.INVALID_ARGUMENT, request.message);
          return create(method.output, await handler(request, ctx));
        };
        runIntercepted(interceptors, { ctx }, serve)
          .then(
            (response) => callback(null, response),
            (err: unknown) => {
              const e = err instanceof RpcError ? err : new RpcError(status.INTERNAL, "internal error");
              callback({ code: e.code, details: e.message, metadata: statusTrailers(e) });
            },
          )
          .finally(() => clearTimeout(timer));
      };
    }
    return out;
  }

  /**
   * Binds the port (0 picks a free one) on `host` (loopback unless told another address),
   * marks every service SERVING and returns the bound port.
   */
  async start(port: number, host = loopback): Promise<number> {
    const bound = await new Promise<number>((resolve, reject) =>
      this.server.bindAsync(joinHostPort(host, port), ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
    );
    this.health.setAll(ServingStatus.SERVING);
    return bound;
  }

  /**
   * Graceful shutdown: health turns NOT_SERVING at once, so load balancers and probes stop
   * sending traffic; calls keep being served for `drainMs` while they notice; then the server
   * stops accepting calls, lets in-flight ones finish (up to `graceMs`) and closes.
   */
  async shutdown({ drainMs = 1000, graceMs = 10_000 }: { drainMs?: number; graceMs?: number } = {}): Promise<void> {
    this.health.setAll(ServingStatus.NOT_SERVING);
    if (drainMs > 0) await Bun.sleep(drainMs);
    this.health.endWatches();
    await new Promise<void>((resolve) => {
      const force = setTimeout(() => {
        log.warn("in-flight calls did not finish in time; closing anyway", { graceMs });
        this.server.forceShutdown();
        resolve();
      }, graceMs);
      this.server.tryShutdown(() => {
        clearTimeout(force);
        resolve();
      });
    });
  }
}

/** The limits among `options` that are set. */
function definedOnly(options: GrpcServerOptions): Partial<typeof grpcServerLimits> {
  return Object.fromEntries(Object.entries(options).filter(([k, v]) => k in grpcServerLimits && v !== undefined));
}
