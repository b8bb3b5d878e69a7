import { timingSafeEqual } from "node:crypto";
import { createMiddleware } from "hono/factory";
import type { CallOptions } from "@bazaar/platform/grpc/client";
import { clearSessionCookie, csrfHeader, readCsrfCookie, readSessionCookie, writeSessionCookie } from "./cookies.ts";
import { apiError, SessionEndedError } from "./errors.ts";
import type { EdgeVariables } from "./edge.ts";
import type { Session, SessionStore } from "./session-store.ts";
import type { UserView } from "./shape.ts";

/** What the BFF's middleware puts in a request's context (edgeRequest's part first). */
export interface AppVariables extends EdgeVariables {
  /** The session store, for the routes that start and end sessions. */
  sessions: SessionStore;
  /** The browser's session, loaded from Redis on first use (once per request); undefined when signed out. */
  session: () => Promise<Session | undefined>;
  /**
   * Call options carrying the user's access token when signed in, else undefined: for pages
   * that anyone may see but that show more to a signed-in user. A session that cannot be used
   * right now (ended, or Redis down) counts as signed out here.
   */
  optionalAuth: () => Promise<CallOptions | undefined>;
  /** The signed-in user (after {@link requireUser}). */
  user: UserView;
  /** The signed-in session (after {@link requireUser}). */
  currentSession: Session;
  /** Call options carrying the user's access token, refreshed when due (after {@link requireUser}). */
  auth: () => Promise<CallOptions>;
}

/** The Hono environment of every BFF route. */
export interface AppEnv {
  Variables: AppVariables;
}

function bearer(token: string): CallOptions {
  return { metadata: { authorization: `Bearer ${token}` } };
}

/**
 * Makes the session available to the routes, loaded lazily so public pages do not touch
 * Redis. A session that is used has its cookie re-issued: the expiry slides in the browser as
 * it does in Redis. A cookie naming no session is removed.
 */
export function sessionMiddleware(store: SessionStore, secureCookies: boolean) {
  return createMiddleware<AppEnv>(async (c, next) => {
    const id = readSessionCookie(c);
    let loaded: Promise<Session | undefined> | undefined;
    const session = () =>
      (loaded ??= !id
        ? Promise.resolve(undefined)
        : store.load(id).then((s) => {
            if (s) writeSessionCookie(c, id, store.ttlSeconds, secureCookies);
            else clearSessionCookie(c);
            return s;
          }));
    c.set("sessions", store);
    c.set("session", session);
    c.set("optionalAuth", async () => {
      try {
        const s = await session();
        return s ? bearer(await store.accessToken(s)) : undefined;
      } catch (err) {
        if (err instanceof SessionEndedError) clearSessionCookie(c);
        return undefined;
      }
    });
    await next();
  });
}

/** 401 unless signed in; then `user`, `currentSession` and `auth` are set. */
export const requireUser = createMiddleware<AppEnv>(async (c, next) => {
  const session = await c.var.session();
  if (!session) return apiError(c, 401, "unauthenticated", "Sign in to continue.");
  c.set("user", session.record.user);
  c.set("currentSession", session);
  c.set("auth", async () => bearer(await c.var.sessions.accessToken(session)));
  await next();
});

/** 401 unless signed in, 403 unless the user is an admin. */
export const requireAdmin = createMiddleware<AppEnv>(async (c, next) => {
  const session = await c.var.session();
  if (!session) return apiError(c, 401, "unauthenticated", "Sign in to continue.");
  if (!session.record.user.roles.includes("admin")) return apiError(c, 403, "forbidden", "This page is for the shop's staff only.");
  return requireUser(c, next);
});

const safeMethods = new Set(["GET", "HEAD", "OPTIONS"]);

/**
 * CSRF double-submit: every unsafe request must carry `x-csrf-token` equal to the
 * `bazaar_csrf` cookie (which another site can neither read nor set), else 403 "csrf".
 */
export const csrfProtection = createMiddleware(async (c, next) => {
  if (safeMethods.has(c.req.method)) return next();
  const cookie = readCsrfCookie(c);
  const header = c.req.header(csrfHeader);
  const matches = cookie !== undefined && header !== undefined && header.length === cookie.length && timingSafeEqual(Buffer.from(header), Buffer.from(cookie));
  if (!matches) {
    return apiError(
      c,
      403,
      "csrf",
      `Missing or wrong CSRF token: send the ${csrfHeader} header with the value of the bazaar_csrf cookie (GET /api/session sets it).`,
    );
  }
  await next();
});
