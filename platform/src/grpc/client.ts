import { create, type DescMessage, type DescMethod, type DescService, type Message, type MessageInitShape, type MessageShape } from "@bufbuild/protobuf";
import { MethodOptions_IdempotencyLevel } from "@bufbuild/protobuf/wkt";
import { Client, credentials, Metadata, type ServiceError, status, type StatusObject } from "@grpc/grpc-js";
import { currentCallBudget } from "../call-budget.ts";
import { RpcError } from "../errors.ts";
import { joinHostPort, parsePeerAddresses } from "../host-port.ts";
import { grpcClientDuration, grpcClientHandled, grpcClientRetries, observeLatency } from "../metrics.ts";
import { injectContext, SpanKind, withSpan } from "../telemetry.ts";
import { methodDefinition } from "./definition.ts";
import { statusDetailsOf } from "./status-details.ts";

/** Per-call options of a {@link GrpcClient} method. */
export interface CallOptions {
  /** This call's deadline, in milliseconds from now; the client's default when omitted. */
  timeoutMs?: number;
  /** Extra metadata, e.g. `authorization`. */
  metadata?: Record<string, string>;
  /** Cancels the call when aborted. */
  signal?: AbortSignal;
}

/** One unary RPC as a typed async function. */
export type UnaryCallFn<I extends DescMessage, O extends DescMessage> = (request: MessageInitShape<I>, options?: CallOptions) => Promise<MessageShape<O>>;

/** A typed client of a protobuf-es service: one async function per unary RPC. */
export type GrpcClient<S extends DescService> = {
  [K in keyof S["method"]]: S["method"][K] extends { methodKind: "unary"; input: infer I extends DescMessage; output: infer O extends DescMessage }
    ? UnaryCallFn<I, O>
    : never;
} & {
  /** Closes the channel. */
  close(): void;
};

/** Options of {@link createClient}. */
export interface ClientOptions {
  /** The deadline of every call that sets none, in milliseconds. Every call has a deadline. */
  defaultTimeoutMs?: number;
  /**
   * Where the client's own access token comes from (a service's token), sent on every call
   * that does not carry an `authorization` of its own (such as a user's token passed along).
   */
  token?: () => Promise<string>;
}

/**
 * The grpc-js target of a peer address (see {@link parsePeerAddresses}): a list of IP addresses
 * becomes `ipv4:a:p,b:p` (or `ipv6:[a]:p,[b]:p`), a host name `dns:///host:port`, so that the
 * channel knows every replica, from the list or from every A/AAAA record of the name (a headless
 * Service). Throws an Error naming a bad entry.
 */
export function grpcTarget(address: string): string {
  const peers = parsePeerAddresses(address);
  const first = peers[0] as (typeof peers)[number];
  if (first.family === 0) return `dns:///${first.host}:${first.port}`;
  return `ipv${first.family}:${peers.map((p) => joinHostPort(p.host, p.port)).join(",")}`;
}

/**
 * How a call the proto declares safe to repeat is retried: a method with an `idempotency_level`
 * (NO_SIDE_EFFECTS or IDEMPOTENT) that fails UNAVAILABLE — its replica died, refused or closed
 * the stream — is sent again, up to 3 more times, within the call's own deadline, backing off
 * 50 ms, 100 ms, 200 ms (±jitter). With round_robin each attempt goes to the next replica, so a
 * read fails over and an idempotent write (PlaceOrder with its key, a saga step by order id) is
 * answered by another replica. Other methods are never repeated by the client: only a call
 * never sent is (grpc-js's transparent retry). Nor is a call whose server said that what failed
 * is shared by every replica (a dependency down: `grpc-retry-pushback-ms: -1`, see
 * StatusDetails.doNotRetry), which would only spend the caller's deadline.
 */
export const retryPolicy = {
  maxAttempts: 4,
  initialBackoff: "0.05s",
  maxBackoff: "0.4s",
  backoffMultiplier: 2,
  retryableStatusCodes: ["UNAVAILABLE"],
} as const;

/** The methods of `service` the proto declares safe to repeat (see {@link retryPolicy}). */
export function repeatableMethods(service: DescService): DescMethod[] {
  return service.methods.filter((m) => m.idempotency !== MethodOptions_IdempotencyLevel.IDEMPOTENCY_UNKNOWN);
}

/**
 * The channel's service config: round_robin, and {@link retryPolicy} for the methods that may be
 * repeated. grpc-js's default, pick_first, sends every call of a long-lived HTTP/2 channel to
 * one replica; round_robin keeps a connection to each and skips one that is down.
 */
export function serviceConfig(service: DescService): string {
  const repeatable = repeatableMethods(service);
  return JSON.stringify({
    loadBalancingConfig: [{ round_robin: {} }],
    methodConfig: repeatable.length ? [{ name: repeatable.map((m) => ({ service: service.typeName, method: m.name })), retryPolicy }] : [],
  });
}

/**
 * The longest a channel waits before trying a lost peer again. A restarted replica gets calls
 * from every caller at most this long after it is up: a rolling restart waits at least this
 * long after a replica is ready before taking the next one down (the Deployments'
 * minReadySeconds).
 */
export const reconnectBackoffMaxMs = 2_000;

/** The metadata key in which grpc-js reports how many attempts came before the one that answered. */
const previousAttemptsKey = "grpc-previous-rpc-attempts";

/**
 * A typed gRPC client for a service at `address`: one `host:port`, a comma-separated list of
 * IP `host:port`s (its replicas), or a host name whose every address is a replica; calls are
 * balanced across them round-robin, and those the proto declares idempotent are retried on
 * another replica after an UNAVAILABLE ({@link retryPolicy}). Every call has a deadline, runs
 * in a CLIENT span whose context travels as `traceparent` metadata, is counted in the client
 * metrics, and fails with an {@link RpcError} carrying the status code (and, for an invalid
 * argument, the field violations of the google.rpc.BadRequest detail the server sent).
 */
export function createClient<S extends DescService>(service: S, address: string, options: ClientOptions = {}): GrpcClient<S> {
  const defaultTimeoutMs = options.defaultTimeoutMs ?? 5_000;
  const client = new Client(grpcTarget(address), credentials.createInsecure(), {
    "grpc.service_config": serviceConfig(service),
    // Find out about a dead connection in seconds, not at the next call's deadline.
    "grpc.keepalive_time_ms": 30_000,
    "grpc.keepalive_timeout_ms": 5_000,
    // Reconnect promptly once a restarted peer is back: grpc-js's defaults (1 s, growing to
    // 120 s) leave a channel waiting long after the peer returned; 250 ms growing to 2 s keeps
    // the retries cheap and the recovery within a couple of seconds.
    "grpc.initial_reconnect_backoff_ms": 250,
    "grpc.max_reconnect_backoff_ms": reconnectBackoffMaxMs,
    // A host name is resolved again when a connection to one of its addresses is lost: at most
    // once a second instead of grpc-js's 30 s, so the pods that replace those of a rolling update
    // are known before the last old one is gone.
    "grpc.dns_min_time_between_resolutions_ms": 1_000,
  });
  const out: Record<string, unknown> = { close: () => client.close() };
  for (const method of service.methods) {
    if (method.methodKind !== "unary") continue;
    const def = methodDefinition(method);
    const labels = { grpc_service: service.typeName, grpc_method: method.name };
    out[method.localName] = (request: MessageInitShape<DescMessage>, callOptions: CallOptions = {}) =>
      withSpan(
        `${service.typeName}/${method.name}`,
        { kind: SpanKind.CLIENT, attributes: { "rpc.system": "grpc", "rpc.service": service.typeName, "rpc.method": method.name, "server.address": address } },
        async (span) => {
          const metadata = new Metadata();
          const carrier: Record<string, string> = { ...callOptions.metadata };
          if (options.token && !carrier.authorization) carrier.authorization = `Bearer ${await options.token()}`;
          injectContext(carrier);
          for (const [k, v] of Object.entries(carrier)) metadata.set(k, v);
          const started = performance.now();
          // Made on behalf of a call being served: no later than that call's deadline, and
          // cancelled with it.
          const budget = currentCallBudget();
          const deadline = Math.min(Date.now() + (callOptions.timeoutMs ?? defaultTimeoutMs), budget?.deadline.getTime() ?? Number.POSITIVE_INFINITY);
          if (budget?.signal.aborted || deadline <= Date.now()) {
            throw new RpcError(status.DEADLINE_EXCEEDED, `${method.name} not called: the call it was for has run out of time or was cancelled`);
          }
          return new Promise<Message>((resolve, reject) => {
            const call = client.makeUnaryRequest(
              def.path,
              def.requestSerialize,
              def.responseDeserialize,
              create(method.input, request),
              metadata,
              { deadline },
              (err: ServiceError | null, response?: Message) => {
                const code = err ? err.code : status.OK;
                span.setAttribute("rpc.grpc.status_code", code);
                const done = { ...labels, grpc_code: status[code] ?? String(code) };
                grpcClientHandled.inc(done);
                observeLatency(grpcClientDuration, done, (performance.now() - started) / 1000, span);
                if (err) {
                  reject(new RpcError(err.code, err.details || err.message, statusDetailsOf(err.metadata)));
                } else resolve(response as Message);
              },
            );
            // Attempts before the one that answered: on the headers, or on the status when no headers came.
            let retriesCounted = false;
            const countRetries = (received: Metadata) => {
              const previous = Number(received.get(previousAttemptsKey)[0] ?? 0);
              if (previous > 0 && !retriesCounted) {
                retriesCounted = true;
                grpcClientRetries.inc(labels, previous);
                span.setAttribute("rpc.grpc.previous_attempts", previous);
              }
            };
            call.on("metadata", countRetries);
            call.on("status", (s: StatusObject) => countRetries(s.metadata));
            callOptions.signal?.addEventListener("abort", () => call.cancel(), { once: true });
            budget?.signal.addEventListener("abort", () => call.cancel(), { once: true });
          });
        },
      );
  }
  return out as GrpcClient<S>;
}
