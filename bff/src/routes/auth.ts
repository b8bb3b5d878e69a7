import { status } from "@grpc/grpc-js";
import { type Context, Hono } from "hono";
import { z } from "zod";
import { clientAddressMetadata } from "@bazaar/platform/auth";
import { RpcError } from "@bazaar/platform/errors";
import type { AppEnv } from "../auth.ts";
import type { Tokens, User } from "@bazaar/proto/bazaar/identity/v1/identity_pb";
import { clearSessionCookie, randomToken, readCsrfCookie, readSessionCookie, writeCsrfCookie, writeSessionCookie } from "../cookies.ts";
import { userView } from "../shape.ts";
import type { IdentityClient } from "../upstreams/identity.ts";
import { valid } from "../validate.ts";

const email = z.email("must be an email address").max(254, "must be at most 254 characters");

const signUpBody = z.object({
  email,
  password: z.string({ error: "is required" }).min(10, "must be at least 10 characters").max(128, "must be at most 128 characters"),
  displayName: z.string({ error: "is required" }).trim().min(1, "is required").max(80, "must be at most 80 characters"),
});

const signInBody = z.object({
  email,
  password: z.string({ error: "is required" }).min(1, "is required").max(128, "must be at most 128 characters"),
});

/**
 * Call options naming the shopper's address (edgeRequest found it: the peer, or what trusted
 * proxies forwarded) to identity, which believes it from the BFF's service token.
 */
const fromShopper = (c: Context<AppEnv>) => {
  const address = c.var.clientAddress;
  return address ? { metadata: { [clientAddressMetadata]: address } } : undefined;
};

/** GET /api/session: who is signed in, and the CSRF token (set as a cookie if the browser has none). */
export function sessionRoutes(secureCookies: boolean) {
  return new Hono<AppEnv>().get("/", async (c) => {
    let csrfToken = readCsrfCookie(c);
    if (!csrfToken) {
      csrfToken = randomToken();
      writeCsrfCookie(c, csrfToken, secureCookies);
    }
    // A browser without a session cookie is answered without Redis. One with a cookie whose
    // session cannot be read (Redis down) gets a 503, which the page asks again after: "signed
    // out" would send a signed-in shopper to a sign-in that cannot work either.
    const session = await c.var.session();
    c.header("cache-control", "no-store");
    return c.json({ user: session?.record.user ?? null, csrfToken });
  });
}

/**
 * What every sign-up is answered, whether its email was free or already had an account: the
 * answer must not tell which. The shop sends no email, so it cannot confirm the address out of
 * band either; the new account is reached by signing in with it (the web UI does that at once),
 * and sign-in answers a wrong password and an unknown email alike, throttled by address.
 */
export const signUpAccepted = "If this email had no account, it has one now: sign in with it and your password.";

/**
 * /api/auth: sign up, sign in and sign out. Each sign-in starts a new session (a new id). A
 * sign-up starts none: its answer is the same for a free and a taken email (see signUpAccepted).
 */
export function authRoutes(identity: IdentityClient, secureCookies: boolean) {
  const start = async (c: Context<AppEnv>, user: User | undefined, tokens: Tokens | undefined) => {
    if (!user || !tokens) throw new RpcError(status.INTERNAL, "identity answered without a user or tokens");
    // A session the browser held before is ended: a sign-in never reuses a session id.
    const previous = await c.var.session().catch(() => undefined);
    if (previous) await c.var.sessions.end(previous).catch(() => {});
    const { id } = await c.var.sessions.create(user, tokens);
    writeSessionCookie(c, id, c.var.sessions.ttlSeconds, secureCookies);
    return userView(user);
  };

  return new Hono<AppEnv>()
    .post("/signup", valid("json", signUpBody), async (c) => {
      const body = c.req.valid("json");
      // identity answers a taken email as a free one (and counts it against the shopper's address).
      await identity.register({ email: body.email, password: body.password, displayName: body.displayName }, fromShopper(c));
      return c.json({ message: signUpAccepted }, 202);
    })
    .post("/signin", valid("json", signInBody), async (c) => {
      const body = c.req.valid("json");
      const res = await identity.login({ email: body.email, password: body.password }, fromShopper(c));
      return c.json({ user: await start(c, res.user, res.tokens) });
    })
    .post("/signout", async (c) => {
      if (readSessionCookie(c)) {
        const session = await c.var.session();
        if (session) await c.var.sessions.end(session);
        clearSessionCookie(c);
      }
      return c.body(null, 204);
    });
}
