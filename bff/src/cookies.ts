import type { Context } from "hono";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";

/** The httpOnly cookie holding only the session's random id. */
export const sessionCookie = "bazaar_session";
/** The readable cookie of the CSRF double-submit; the UI echoes it in `x-csrf-token`. */
export const csrfCookie = "bazaar_csrf";
/** The header every unsafe request under /api carries. */
export const csrfHeader = "x-csrf-token";

/** A random token: 32 bytes, base64url (43 characters). */
export function randomToken(): string {
  return Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("base64url");
}

/** True for a string that could be one of {@link randomToken}'s. */
export function looksLikeToken(value: string | undefined): value is string {
  return value !== undefined && /^[A-Za-z0-9_-]{43}$/.test(value);
}

/** Secure when configured, or when the browser's request reached the edge over TLS (see edgeRequest). */
function secure(c: Context, configured: boolean): boolean {
  return configured || c.get("overTls") === true;
}

/** The session id the browser sent, if it looks like one. */
export function readSessionCookie(c: Context): string | undefined {
  const value = getCookie(c, sessionCookie);
  return looksLikeToken(value) ? value : undefined;
}

/** Sets the session cookie: httpOnly, SameSite=Lax, Path=/, living as long as the session. */
export function writeSessionCookie(c: Context, id: string, maxAgeSeconds: number, secureCookies: boolean): void {
  setCookie(c, sessionCookie, id, {
    httpOnly: true,
    sameSite: "Lax",
    path: "/",
    secure: secure(c, secureCookies),
    maxAge: Math.max(0, Math.floor(maxAgeSeconds)),
  });
}

/** Removes the session cookie. */
export function clearSessionCookie(c: Context): void {
  deleteCookie(c, sessionCookie, { path: "/" });
}

/** The CSRF token the browser holds, if any. */
export function readCsrfCookie(c: Context): string | undefined {
  const value = getCookie(c, csrfCookie);
  return looksLikeToken(value) ? value : undefined;
}

/** Sets the CSRF cookie: readable by the page's script (not httpOnly), SameSite=Lax, Path=/. */
export function writeCsrfCookie(c: Context, token: string, secureCookies: boolean): void {
  setCookie(c, csrfCookie, token, { httpOnly: false, sameSite: "Lax", path: "/", secure: secure(c, secureCookies) });
}
