import { status } from "@grpc/grpc-js";
import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { z } from "zod";
import { RpcError } from "@bazaar/platform/errors";
import { log } from "@bazaar/platform/log";
import { unavailableDependency } from "@bazaar/platform/outage";
import { clearSessionCookie } from "./cookies.ts";

/** The JSON body of every error the BFF returns. */
export interface ApiError {
  error: {
    /** A stable, machine-readable code, e.g. "not_found". */
    code: string;
    /** A sentence a person can act on. */
    message: string;
    /** Per-field problems of an invalid request, keyed by field name. */
    fields?: Record<string, string>;
  };
}

/** What a shopper reads when something the shop needs is down. */
const serviceDownMessage = "A service the shop depends on is not answering right now. Please try again in a moment.";

/** How each gRPC status reaches the browser. */
const httpOf: Partial<Record<status, [ContentfulStatusCode, string]>> = {
  [status.INVALID_ARGUMENT]: [400, "invalid_request"],
  [status.OUT_OF_RANGE]: [400, "invalid_request"],
  [status.NOT_FOUND]: [404, "not_found"],
  [status.ALREADY_EXISTS]: [409, "conflict"],
  [status.ABORTED]: [409, "conflict"],
  [status.FAILED_PRECONDITION]: [409, "failed_precondition"],
  [status.UNAUTHENTICATED]: [401, "unauthenticated"],
  [status.PERMISSION_DENIED]: [403, "forbidden"],
  [status.RESOURCE_EXHAUSTED]: [429, "rate_limited"],
  [status.UNIMPLEMENTED]: [501, "not_implemented"],
  [status.UNAVAILABLE]: [503, "unavailable"],
  [status.DEADLINE_EXCEEDED]: [503, "unavailable"],
  [status.CANCELLED]: [503, "unavailable"],
};

/**
 * The browser's session ended (signed out elsewhere, refresh token expired, revoked or
 * reused): a 401, and the session cookie is removed.
 */
export class SessionEndedError extends RpcError {
  override name = "SessionEndedError";
  constructor(message = "Your session has ended; please sign in again.") {
    super(status.UNAUTHENTICATED, message);
  }
}

/** A field path as the API spells it: proto's snake_case names in camelCase ("lines[0].product_id" → "lines[0].productId"). */
function apiFieldName(path: string): string {
  return path.replace(/_([a-z0-9])/g, (_, ch: string) => ch.toUpperCase());
}

/**
 * The field violations a service sent (the google.rpc.BadRequest detail, which the gRPC client
 * puts on the RpcError) keyed by the API's field names, the first problem of each field; none
 * when the service named no field.
 */
function upstreamFields(err: RpcError): Record<string, string> | undefined {
  if (err.violations.length === 0) return undefined;
  const fields: Record<string, string> = {};
  for (const v of err.violations) if (v.field) fields[apiFieldName(v.field)] ??= v.description;
  return Object.keys(fields).length > 0 ? fields : undefined;
}

/** Failed preconditions the web UI acts on, by the google.rpc.PreconditionFailure type a service sent. */
const preconditionCodes: Record<string, string> = {
  // orders: the catalog's total is not the one the shopper was shown (the page reloads the cart).
  PRICE: "price_changed",
};

/** The API's code for a failed precondition the UI acts on, if the service named one. */
function preconditionCode(err: RpcError): string | undefined {
  for (const p of err.preconditions) if (preconditionCodes[p.type]) return preconditionCodes[p.type];
  return undefined;
}

/** An error answer in the API's shape. */
export function apiError<S extends ContentfulStatusCode>(c: Context, httpStatus: S, code: string, message: string, fields?: Record<string, string>) {
  return c.json<ApiError, S>({ error: fields ? { code, message, fields } : { code, message } }, httpStatus);
}

/**
 * Turns an error from a handler into an HTTP answer: a gRPC status maps to the HTTP code that
 * fits, with the service's message for a caller's mistake (and, for an invalid argument, the
 * fields it names) and a plain sentence for an outage; anything else is a 500 whose details
 * stay in the log.
 */
export function errorResponse(err: unknown, c: Context): Response {
  if (err instanceof RpcError) {
    const [httpStatus, code] = httpOf[err.code] ?? [500, "internal"];
    const message = httpStatus === 503 ? serviceDownMessage : httpStatus >= 500 ? "Something went wrong on our side. Please try again." : err.message;
    if (httpStatus >= 500) log.warn("upstream call failed", { code: err.codeName, error: err.message, path: c.req.path });
    if (err instanceof SessionEndedError) clearSessionCookie(c);
    const fields = code === "invalid_request" ? upstreamFields(err) : undefined;
    return apiError(c, httpStatus, preconditionCode(err) ?? code, message, fields);
  }
  // Hono's own 4xx, e.g. a body that is not JSON.
  if (err instanceof HTTPException && err.status < 500) {
    return apiError(c, err.status as ContentfulStatusCode, "invalid_request", err.message || "The request is malformed.");
  }
  // The BFF's own Redis (sessions, the checkout memo) out of reach: an outage, not a bug.
  const down = unavailableDependency(err);
  if (down) {
    log.warn("dependency unavailable", { dependency: down, error: (err as Error).message, path: c.req.path });
    return apiError(c, 503, "unavailable", serviceDownMessage);
  }
  log.error("unhandled error in BFF route", { err, path: c.req.path });
  return c.json<ApiError>({ error: { code: "internal", message: "Something went wrong on our side. Please try again." } }, 500);
}

/** A 400 listing each invalid field of a request. */
export function validationError(c: Context, error: z.ZodError): Response {
  const fields: Record<string, string> = {};
  for (const issue of error.issues) fields[issue.path.join(".") || "request"] ??= issue.message;
  return c.json<ApiError>({ error: { code: "invalid_request", message: "Some fields are not valid; see fields.", fields } }, 400);
}
