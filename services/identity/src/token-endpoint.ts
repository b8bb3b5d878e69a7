import { createHash } from "node:crypto";
import type { Context, Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { getConnInfo } from "hono/bun";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { log } from "@bazaar/platform/log";
import { oauthClientIdPattern } from "@bazaar/platform/validation";
import type { AccessTokenIssuer } from "./access-tokens.ts";
import { type DelayPolicy, type FailureDelays, waitInWords } from "./failure-delays.ts";
import { tokenRequests } from "./metrics.ts";
import { clientSecretMatches, type OAuthClientHashes } from "./oauth-clients.ts";

/** Where the token endpoint is served on identity's HTTP port. */
export const tokenEndpointPath = "/oauth2/token";

/** The only grant the endpoint issues tokens for. */
export const supportedGrantTypes = ["client_credentials"] as const;

/** The only way a client authenticates. */
export const supportedAuthMethods = ["client_secret_basic"] as const;

/** How failed client authentications are slowed (see {@link FailureDelays}). */
export interface TokenThrottleOptions {
  /** Per client address: the attempts of one caller, on any client ids. */
  perAddress: DelayPolicy;
  /** Per client id: a guess at one client's secret from many addresses. */
  perClient: DelayPolicy;
}

/**
 * The defaults. A service's client never fails unless misconfigured, so few failures are free:
 * past them, every attempt waits a delay that doubles per failure (1 s, 2 s, 4 s …). Per
 * address up to 15 minutes. Per client id the cap is 5 minutes: a guess spread over many
 * addresses also delays that client's own renewals, so its cap bounds that.
 */
export const defaultTokenThrottle: TokenThrottleOptions = {
  perAddress: { windowMs: 60 * 60_000, freeFailures: 5, baseDelayMs: 1_000, maxDelayMs: 15 * 60_000 },
  perClient: { windowMs: 60 * 60_000, freeFailures: 10, baseDelayMs: 1_000, maxDelayMs: 5 * 60_000 },
};

/** What {@link addTokenEndpoint} needs. */
export interface TokenEndpointOptions {
  /** The clients and the hashes of their secrets (OAUTH_CLIENTS). */
  clients: OAuthClientHashes;
  /** Lifetime of a service token, in seconds (SERVICE_TOKEN_TTL_SECONDS). */
  ttlSeconds: number;
  /** Overrides of {@link defaultTokenThrottle}. */
  throttle?: Partial<TokenThrottleOptions>;
}

/** The largest request body: a client-credentials request is a few dozen bytes. */
const maxBodyBytes = 4 * 1024;
/** The longest secret checked; longer ones are wrong without spending a hash on them. */
const maxSecretLength = 256;

// RFC 6749 section 5.1: token responses, errors included, must not be cached.
const noStore = { "cache-control": "no-store", pragma: "no-cache" };
// Section 2.3.1 / 5.2: a failed client authentication names the scheme the client should use.
const basicChallenge = { "www-authenticate": 'Basic realm="bazaar"' };

type OAuthErrorCode = "invalid_request" | "invalid_client" | "unsupported_grant_type" | "invalid_scope" | "temporarily_unavailable";

/**
 * An error response (RFC 6749 section 5.2). `description` is for people, in the characters
 * error_description allows (printable ASCII without quote or backslash): it never echoes input.
 */
function oauthError(c: Context, status: ContentfulStatusCode, error: OAuthErrorCode, description: string, headers: Record<string, string> = {}) {
  tokenRequests.inc({ outcome: error });
  return c.json({ error, error_description: description }, status, { ...noStore, ...headers });
}

const unauthenticated = (c: Context, description: string) => oauthError(c, 401, "invalid_client", description, basicChallenge);

/** The same answer for an unknown client and a wrong secret: nothing tells which client ids exist. */
const wrongClient = "client authentication failed: the client id or secret is wrong";

/**
 * Client id and secret from an `Authorization: Basic` header. RFC 6749 section 2.3.1: each is
 * form-urlencoded before the two are joined with ":" and base64-encoded, so they are
 * form-decoded after the split ("+" is a space). Undefined when the header is not that.
 */
export function basicClientCredentials(header: string | undefined): { clientId: string; secret: string } | undefined {
  const match = /^Basic +([A-Za-z0-9+/]+={0,2}) *$/i.exec(header ?? "");
  if (!match?.[1]) return undefined;
  const decoded = Buffer.from(match[1], "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  if (colon < 0) return undefined;
  try {
    const formDecode = (s: string) => decodeURIComponent(s.replace(/\+/g, " "));
    return { clientId: formDecode(decoded.slice(0, colon)), secret: formDecode(decoded.slice(colon + 1)) };
  } catch {
    return undefined; // a malformed %-escape
  }
}

/** The caller's address: the connection's peer (identity's HTTP port is reached directly, no proxy is believed). */
function peerAddress(c: Context): string {
  try {
    return getConnInfo(c).remote.address ?? "unknown";
  } catch {
    return "unknown"; // not served by Bun (app.request in a test)
  }
}

/**
 * Serves the OAuth 2.0 token endpoint, `POST /oauth2/token`, for the client-credentials grant
 * (RFC 6749 section 4.4) with client_secret_basic authentication: a calling service trades
 * its client id and secret for a service token (subject `service:<client id>`, role
 * "service"), signed like every access token and valid `ttlSeconds`.
 *
 * - The body is application/x-www-form-urlencoded, at most 4 KiB, each parameter at most once.
 * - `grant_type` must be client_credentials (else unsupported_grant_type).
 * - Scopes: service tokens carry none (what a service may do follows from its role), so a
 *   request naming a scope is invalid_scope instead of getting less than it asked for.
 * - A failed authentication is invalid_client (401, WWW-Authenticate: Basic), the same for an
 *   unknown client and a wrong secret. Failures are counted per client address and per client
 *   id with growing delays ({@link defaultTokenThrottle}); while one applies the answer is 429
 *   temporarily_unavailable with Retry-After, before any secret is checked.
 */
export function addTokenEndpoint(app: Hono, tokens: AccessTokenIssuer, delays: FailureDelays, options: TokenEndpointOptions): void {
  const throttle = { ...defaultTokenThrottle, ...options.throttle };
  const limit = bodyLimit({
    maxSize: maxBodyBytes,
    onError: (c) => oauthError(c, 413, "invalid_request", `the request body is larger than ${maxBodyBytes} bytes`),
  });

  app.post(tokenEndpointPath, limit, async (c) => {
    const mediaType = c.req.header("content-type")?.split(";")[0]?.trim().toLowerCase();
    if (mediaType !== "application/x-www-form-urlencoded") {
      return oauthError(c, 400, "invalid_request", "send the parameters as application/x-www-form-urlencoded (RFC 6749 section 4.4.2)");
    }
    const params = new URLSearchParams(await c.req.text());
    const repeated = [...new Set(params.keys())].find((name) => params.getAll(name).length > 1);
    if (repeated !== undefined) return oauthError(c, 400, "invalid_request", "a parameter is given more than once; send each at most once");

    const grantType = params.get("grant_type");
    if (!grantType) return oauthError(c, 400, "invalid_request", "grant_type is missing: send grant_type=client_credentials");
    if (grantType !== "client_credentials") {
      return oauthError(c, 400, "unsupported_grant_type", "this endpoint issues tokens for the client_credentials grant only");
    }
    if (params.get("scope")?.trim()) {
      return oauthError(c, 400, "invalid_scope", "service tokens carry no scopes (a service's role decides what it may call): omit scope");
    }

    const header = c.req.header("authorization");
    if (params.has("client_secret")) {
      if (header) return oauthError(c, 400, "invalid_request", "authenticate one way only: the Authorization header, without client_secret in the body");
      return unauthenticated(c, "this server supports client_secret_basic only: send the client id and secret in an Authorization: Basic header");
    }
    const credentials = basicClientCredentials(header);
    if (!credentials) {
      return unauthenticated(c, "authenticate with HTTP Basic: Authorization: Basic base64(client_id:client_secret), each form-urlencoded first");
    }
    const { clientId, secret } = credentials;
    const bodyClientId = params.get("client_id");
    if (bodyClientId !== null && bodyClientId !== clientId)
      return oauthError(c, 400, "invalid_request", "client_id in the body is not the client that authenticated");
    // Ids no client can have and oversized secrets are wrong without a hash (or a count).
    if (!oauthClientIdPattern.test(clientId) || secret.length === 0 || secret.length > maxSecretLength) return unauthenticated(c, wrongClient);

    const address = peerAddress(c);
    const hash = (s: string) => createHash("sha256").update(s).digest("hex");
    const verdict = await delays.attempt([
      { key: delays.key(`oauth-token-failures:address:${hash(address)}`), policy: throttle.perAddress },
      { key: delays.key(`oauth-token-failures:client:${clientId}`), policy: throttle.perClient },
    ]);
    if (!verdict.allowed) {
      return oauthError(
        c,
        429,
        "temporarily_unavailable",
        `too many failed client authentications for this client or from this address; try again in ${waitInWords(verdict.waitMs)}`,
        { "retry-after": String(Math.ceil(verdict.waitMs / 1000)) },
      );
    }
    if (!(await clientSecretMatches(options.clients, clientId, secret))) {
      log.warn("token request refused: wrong client id or secret", { clientId, address });
      return unauthenticated(c, wrongClient);
    }
    await delays.forget(verdict.attempt);
    const access = await tokens.issue(`service:${clientId}`, ["service"], options.ttlSeconds);
    tokenRequests.inc({ outcome: "issued" });
    return c.json({ access_token: access.token, token_type: "Bearer", expires_in: options.ttlSeconds }, 200, noStore);
  });

  app.all(tokenEndpointPath, (c) => oauthError(c, 405, "invalid_request", "use POST", { allow: "POST" }));
}
