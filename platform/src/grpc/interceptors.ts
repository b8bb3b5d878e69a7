import type { DescMethod, Message } from "@bufbuild/protobuf";
import { type Metadata, status } from "@grpc/grpc-js";
import { type CallBudget, CallEndedError, withCallBudget } from "../call-budget.ts";
import { outageMessage, unavailableDependency } from "../outage.ts";
import { domainErrorCode, FailedPreconditionError, InvalidArgumentError, RpcError } from "../errors.ts";
import { type Access, type AccessTokenVerifier, authorize, bearerToken, type Principal } from "../auth.ts";
import type { Logger } from "../log.ts";
import { grpcServerDuration, grpcServerHandled, grpcServerInFlight, observeLatency } from "../metrics.ts";
import { context, trace } from "@opentelemetry/api";
import { extractContext, recordError, SpanKind, tracer } from "../telemetry.ts";

/** What a server handler knows about the call it is answering. */
export interface CallContext {
  /** The RPC being served. */
  readonly method: DescMethod;
  /** The request metadata (headers). */
  readonly metadata: Metadata;
  /** When the call must be answered by; every call has one (a default if the client set none). */
  readonly deadline: Date;
  /** Aborted when the deadline passes or the client cancels: hand it to slow work. */
  readonly signal: AbortSignal;
  /** The caller's address. */
  readonly peer: string;
  /** A logger carrying the RPC's name. */
  readonly log: Logger;
  /** The verified caller, set by the auth interceptor; undefined for an anonymous call. */
  principal: Principal | undefined;
}

/**
 * One served unary call, as the interceptors see it. The request is not part of it: it is
 * decoded after the interceptors have run (after auth), by the server.
 */
export interface ServerCall {
  readonly ctx: CallContext;
}

/**
 * A server interceptor wraps the handler: it may act before and after `next()`, and sees the
 * response or the error. After the error-mapping interceptor every error is an {@link RpcError}.
 */
export type ServerInterceptor = (call: ServerCall, next: () => Promise<Message>) => Promise<Message>;

/** Codes that mean the server failed, as opposed to the caller asking for something wrong. */
const serverFaultCodes = new Set([status.UNKNOWN, status.DEADLINE_EXCEEDED, status.UNIMPLEMENTED, status.INTERNAL, status.UNAVAILABLE, status.DATA_LOSS]);

function codeOf(err: unknown): status {
  return err instanceof RpcError ? err.code : status.UNKNOWN;
}

/**
 * Deadline: answers DEADLINE_EXCEEDED if the handler has not finished by the call's deadline.
 * The deadline itself (the client's, or the server default) and the abort signal are put on
 * the call context before the chain runs, so every handler has both, and in scope as the
 * call's budget (call-budget.ts): downstream calls get the time left, database queries are
 * cancelled when it runs out or the caller gives up.
 */
export const deadlineInterceptor: ServerInterceptor = async (call, next) => {
  const { deadline, signal } = call.ctx;
  if (signal.aborted) throw new RpcError(status.DEADLINE_EXCEEDED, "the call's deadline had passed before it was served");
  let onAbort: (() => void) | undefined;
  const expired = new Promise<never>((_, reject) => {
    onAbort = () => reject(new RpcError(status.DEADLINE_EXCEEDED, `the call did not finish before its deadline (${deadline.toISOString()})`));
    signal.addEventListener("abort", onAbort, { once: true });
  });
  const budget: CallBudget = { deadline, signal, inFlight: true };
  try {
    return await Promise.race([withCallBudget(budget, next), expired]);
  } finally {
    budget.inFlight = false;
    if (onAbort) signal.removeEventListener("abort", onAbort);
  }
};

/**
 * Tracing: continues the caller's trace from the `traceparent` metadata and wraps the call in
 * a SERVER span named `<service>/<method>`, as OpenTelemetry's RPC conventions name it.
 */
export const tracingInterceptor: ServerInterceptor = async (call, next) => {
  const { method, metadata } = call.ctx;
  const carrier: Record<string, string> = {};
  for (const [k, v] of Object.entries(metadata.getMap())) if (typeof v === "string") carrier[k] = v;
  const parent = extractContext(carrier);
  const span = tracer().startSpan(
    `${method.parent.typeName}/${method.name}`,
    {
      kind: SpanKind.SERVER,
      attributes: {
        "rpc.system": "grpc",
        "rpc.service": method.parent.typeName,
        "rpc.method": method.name,
        "network.peer.address": call.ctx.peer,
      },
    },
    parent,
  );
  try {
    const response = await context.with(trace.setSpan(parent, span), next);
    span.setAttribute("rpc.grpc.status_code", status.OK);
    return response;
  } catch (err) {
    const code = codeOf(err);
    span.setAttribute("rpc.grpc.status_code", code);
    // Per the conventions, a caller's mistake (NOT_FOUND …) does not make a server span an error.
    if (serverFaultCodes.has(code)) recordError(span, err);
    throw err;
  } finally {
    span.end();
  }
};

/**
 * Logging: one line per call. Successful calls log at debug (a busy service would otherwise
 * spend its time writing logs), a caller's mistake at info, a server fault at error.
 */
export const loggingInterceptor: ServerInterceptor = async (call, next) => {
  const started = performance.now();
  try {
    const response = await next();
    call.ctx.log.debug("rpc served", { code: "OK", ms: round(performance.now() - started) });
    return response;
  } catch (err) {
    const code = codeOf(err);
    const fields = { code: status[code], ms: round(performance.now() - started), error: (err as Error).message };
    if (serverFaultCodes.has(code)) call.ctx.log.error("rpc failed", fields);
    else call.ctx.log.info("rpc refused", fields);
    throw err;
  }
};

/** Metrics: counts every call and observes its duration, by method and status code, and the calls in flight. */
export const metricsInterceptor: ServerInterceptor = async (call, next) => {
  const { method } = call.ctx;
  const started = performance.now();
  const inFlight = { grpc_service: method.parent.typeName, grpc_method: method.name };
  grpcServerInFlight.inc(inFlight);
  let code: status = status.OK;
  try {
    return await next();
  } catch (err) {
    code = codeOf(err);
    throw err;
  } finally {
    const labels = {
      grpc_service: method.parent.typeName,
      grpc_method: method.name,
      grpc_type: method.methodKind,
      grpc_code: status[code] ?? String(code),
    };
    grpcServerInFlight.dec(inFlight);
    grpcServerHandled.inc(labels);
    observeLatency(grpcServerDuration, labels, (performance.now() - started) / 1000);
  }
};

/**
 * Error mapping: a domain error becomes its status code with its message (written for the
 * caller), an invalid argument also carries its field violations, which the server sends
 * as a google.rpc.BadRequest detail, and a failed precondition the things it names, sent as a
 * google.rpc.PreconditionFailure detail; an RpcError passes as it is; Postgres or Redis out of
 * reach is UNAVAILABLE saying which (outage.ts), so the caller retries; work abandoned because
 * the call ended (a Redis command given up at the deadline, a query Postgres cancelled with the
 * call) is DEADLINE_EXCEEDED, or CANCELLED if the caller cancelled, not a bug; anything else
 * is a bug and becomes INTERNAL with the trace id to look it up by, never the internal message
 * or stack.
 */
export const errorMappingInterceptor: ServerInterceptor = async (call, next) => {
  try {
    return await next();
  } catch (err) {
    if (err instanceof RpcError) throw err;
    const code = domainErrorCode(err);
    // A problem that names no field is in the message only: BadRequest is about fields.
    const violations = err instanceof InvalidArgumentError ? err.violations.filter((v) => v.field) : [];
    const preconditions = err instanceof FailedPreconditionError ? err.violations : [];
    if (code !== undefined) throw new RpcError(code, (err as Error).message, { violations, preconditions });
    const down = unavailableDependency(err);
    if (down) {
      call.ctx.log.warn("dependency unavailable", { dependency: down, error: (err as Error).message });
      // Every replica shares the dependency: repeating the call on another would fail alike.
      throw new RpcError(status.UNAVAILABLE, outageMessage(down), { doNotRetry: true });
    }
    const { deadline, signal } = call.ctx;
    if (err instanceof CallEndedError || signal.aborted) {
      const expired = err instanceof CallEndedError ? err.deadlineExceeded : Date.now() >= deadline.getTime();
      call.ctx.log.debug("work abandoned with the call", { error: (err as Error).message });
      throw expired
        ? new RpcError(status.DEADLINE_EXCEEDED, `the call did not finish before its deadline (${deadline.toISOString()})`)
        : new RpcError(status.CANCELLED, "the call was cancelled by its caller");
    }
    call.ctx.log.error("unexpected error in handler", { err });
    const traceId = trace.getActiveSpan()?.spanContext().traceId;
    throw new RpcError(status.INTERNAL, `internal error (trace ${traceId ?? "unknown"}); the server's logs have the details`);
  }
};

/**
 * Auth: verifies the bearer token in the `authorization` metadata (if any) and checks the
 * RPC's access level: UNAUTHENTICATED without a valid token where one is needed,
 * PERMISSION_DENIED without the role. Ownership (a user's own cart, orders …) is the
 * handler's to check, with `ctx.principal`.
 */
export function authInterceptor(verifier: AccessTokenVerifier | undefined, access: Record<string, Access>): ServerInterceptor {
  return async (call, next) => {
    const { method, metadata } = call.ctx;
    const level = access[method.localName] ?? "user";
    const header = metadata.get("authorization")[0];
    const token = bearerToken(typeof header === "string" ? header : header?.toString());
    if (token) {
      if (!verifier) throw new RpcError(status.UNAUTHENTICATED, "this server cannot verify tokens (no JWKS configured)");
      call.ctx.principal = await verifier.verify(token);
    }
    authorize(level, call.ctx.principal, `${method.parent.typeName}/${method.name}`);
    return next();
  };
}

/**
 * The server interceptors, outermost first. The order matters:
 * 1. deadline: outermost, so the budget covers everything, including the other interceptors;
 * 2. tracing: before logging, so every log line of the call carries its trace_id and span_id;
 * 3. logging: sees the final status code (after mapping) and the duration;
 * 4. metrics: counts the final status code, like logging;
 * 5. error mapping: so everything outside it sees an RpcError with the right code;
 * 6. auth (added per service, after these, where the service has access rules): inside error
 *    mapping, so a refused call is logged, counted and traced like any other.
 */
export const serverInterceptors: readonly ServerInterceptor[] = [
  deadlineInterceptor,
  tracingInterceptor,
  loggingInterceptor,
  metricsInterceptor,
  errorMappingInterceptor,
];

/** Runs a handler inside a chain of interceptors. */
export function runIntercepted(interceptors: readonly ServerInterceptor[], call: ServerCall, handler: () => Promise<Message>): Promise<Message> {
  const dispatch = (i: number): Promise<Message> => {
    const interceptor = interceptors[i];
    return interceptor ? interceptor(call, () => dispatch(i + 1)) : handler();
  };
  return dispatch(0);
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}
