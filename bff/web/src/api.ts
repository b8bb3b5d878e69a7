/**
 * The BFF's JSON API, typed from its routes by hono/client: every path, request body, query
 * and path parameter and answer comes from `ApiRoutes` (bff/src/api-routes.ts), errors
 * included (`{ error: { code, message, fields? } }`). Only types come from bff/src: nothing
 * of the server reaches the bundle. Every POST/PATCH/PUT/DELETE carries the CSRF token in
 * `x-csrf-token`; the session lives in an httpOnly cookie, so requests are same-origin with
 * credentials.
 *
 * A call reads `read(api.cart.$get(undefined, withSignal(signal)))`: the success's JSON, or an
 * {@link ApiError} thrown.
 */
import { type ClientResponse, hc } from "hono/client";
import type { ClientErrorStatusCode, ServerErrorStatusCode } from "hono/utils/http-status";
import type { ApiRoutes } from "../../src/api-routes.ts";
import type { ApiError as ApiErrorBody } from "../../src/errors.ts";
// The BFF's response shapes, declared once beside the server code that makes them.
import type {
  AdminOrderView as AdminOrder,
  CartLineView as CartLine,
  CartView as Cart,
  CategoryView as Category,
  NotificationView as Notification,
  OrderStatusName as OrderStatus,
  OrderView as Order,
  PriceView as Price,
  ProductView as Product,
  StockView as StockLevel,
  UserView as User,
} from "../../src/shape.ts";

export type { AdminOrder, Cart, CartLine, Category, Notification, Order, OrderStatus, Price, Product, StockLevel, User };

type ErrorStatus = ClientErrorStatusCode | ServerErrorStatusCode;
type AnyResponse = ClientResponse<unknown, number, string>;

/** The JSON of a successful answer among a route's possible answers (nothing for a 204). */
export type Success<R> = R extends ClientResponse<infer T, infer S, infer F> ? ([S] extends [ErrorStatus] ? never : F extends "json" ? T : undefined) : never;
/** What a call of `api` answers on success, e.g. `Answer<typeof api.notifications.$get>`. */
export type Answer<F extends (...args: never[]) => Promise<AnyResponse>> = Success<Awaited<ReturnType<F>>>;

/** An error answered by the BFF (or a network failure: status 0), with its message for people. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly fields: Record<string, string> = {},
  ) {
    super(message);
    this.name = "ApiError";
  }
}

let csrfToken = "";

/** The CSRF token: the readable cookie when there is one (it may rotate), else what /api/session said. */
function currentCsrfToken(): string {
  const cookie = document.cookie.split("; ").find((c) => c.startsWith("bazaar_csrf="));
  return cookie ? decodeURIComponent(cookie.slice("bazaar_csrf=".length)) : csrfToken;
}

/** Called with every 401: the session is gone (expired, or signed out elsewhere). */
let onUnauthenticated: () => void = () => {};
/** Sets what happens on a 401 from any call. */
export function setUnauthenticatedHandler(handler: () => void): void {
  onUnauthenticated = handler;
}

/**
 * The client's fetch: asks for JSON, adds the CSRF token to changes, turns a network failure
 * into an ApiError (status 0), renews a stale CSRF token once, and reports 401s.
 */
async function send(input: RequestInfo | URL, init: RequestInit = {}, retried = false): Promise<Response> {
  const headers = new Headers(init.headers);
  headers.set("accept", "application/json");
  if ((init.method ?? "GET") !== "GET") headers.set("x-csrf-token", currentCsrfToken());
  let res: Response;
  try {
    res = await fetch(input, { ...init, headers, credentials: "same-origin" });
  } catch (err) {
    if ((err as Error).name === "AbortError") throw err;
    throw new ApiError(0, "network", "Cannot reach the shop. Check your connection and try again.");
  }
  if (res.status === 403 && !retried) {
    const body = (await res
      .clone()
      .json()
      .catch(() => null)) as ApiErrorBody | null;
    // A stale or missing CSRF token: fetch a fresh one and try once more.
    if (body?.error?.code === "csrf") {
      await loadSession(init.signal ?? undefined).catch(() => undefined);
      return send(input, init, true);
    }
  }
  if (res.status === 401) onUnauthenticated();
  return res;
}

/** The API under /api, typed from the BFF's routes. */
export const api = hc<ApiRoutes>("/api", { fetch: send });

/** The request options that make a call abort with `signal` (the page's, when the person navigates away). */
export const withSignal = (signal: AbortSignal | undefined) => ({ init: { signal } });

/** Waits for an answer of {@link api}: its JSON on success, else the API's error thrown as an {@link ApiError}. */
export async function read<R extends AnyResponse>(call: Promise<R>): Promise<Success<R>> {
  const res = await call;
  if (res.status === 204) return undefined as Success<R>;
  const json: unknown = await res.json().catch((err: unknown) => {
    // Navigating away while the body arrives aborts its read: that is no answer at all.
    if ((err as Error).name === "AbortError") throw err;
    return null;
  });
  if (!res.ok) {
    // Every error status of the API carries an ApiError body (see ApiRoutes).
    const error = (json as ApiErrorBody | null)?.error;
    const fallback = res.status >= 500 ? "The shop is not answering right now. Please try again in a moment." : `The shop could not do that (${res.status}).`;
    throw new ApiError(res.status, error?.code ?? "error", error?.message ?? fallback, error?.fields);
  }
  return json as Success<R>;
}

/** The session: who is signed in, and the CSRF token for changes (kept for the calls that follow). */
export async function loadSession(signal?: AbortSignal): Promise<Answer<typeof api.session.$get>> {
  const session = await read(api.session.$get(undefined, withSignal(signal)));
  csrfToken = session.csrfToken;
  return session;
}
