import { log } from "./log.ts";

/** The client a service authenticates as at identity's token endpoint (see `oauthClientEnv`). */
export interface OAuthClient {
  /** identity's token endpoint, e.g. http://127.0.0.1:9101/oauth2/token. */
  tokenUrl: string;
  clientId: string;
  clientSecret: string;
}

/** Options of {@link ServiceTokenSource}. */
export interface ServiceTokenSourceOptions {
  /** How long one token request may take, in milliseconds (default 3 s). */
  timeoutMs?: number;
}

/** How long before it expires a token is renewed. */
const renewBeforeMs = 60_000;

/** A token endpoint's success response (RFC 6749 §5.1), the fields used. */
interface TokenResponse {
  access_token?: unknown;
  token_type?: unknown;
  expires_in?: unknown;
}

/**
 * RFC 6749 §2.3.1: the client id and secret are form-urlencoded (application/x-www-form-urlencoded)
 * before they are joined with ":" and base64-encoded, so a ":" or "%" in either survives.
 */
export function basicCredentials(clientId: string, clientSecret: string): string {
  const formEncode = (s: string) => encodeURIComponent(s).replace(/%20/g, "+");
  return `Basic ${Buffer.from(`${formEncode(clientId)}:${formEncode(clientSecret)}`).toString("base64")}`;
}

/**
 * A service's own access token, for calls it makes on nobody's behalf (the orders saga
 * resuming after a restart, the BFF signing shoppers in): obtained from identity's token
 * endpoint with the OAuth 2.0 client-credentials grant (RFC 6749 §4.4, client_secret_basic),
 * cached, and renewed a minute before it expires (halfway, for a token shorter-lived than two
 * minutes). Concurrent callers share one request. While a renewal fails, the current token is
 * used until it expires (retrying each second); after that the error, naming the endpoint and
 * what it answered, reaches the caller.
 */
export class ServiceTokenSource {
  private current: { token: string; renewAt: number; expiresAt: number } | undefined;
  private pending: Promise<string> | undefined;
  private readonly timeoutMs: number;

  constructor(
    private readonly client: OAuthClient,
    options: ServiceTokenSourceOptions = {},
  ) {
    this.timeoutMs = options.timeoutMs ?? 3_000;
  }

  /** A valid token (fetching a new one when needed). */
  readonly token = (): Promise<string> => {
    const now = Date.now();
    if (this.current && now < this.current.renewAt) return Promise.resolve(this.current.token);
    this.pending ??= this.request()
      .catch((err: unknown) => {
        // Renewal failed but the token in hand is still good for a while: keep using it, and
        // try again in a second rather than on every call.
        const held = this.current;
        if (held && Date.now() < held.expiresAt - 5_000) {
          log.warn("service token renewal failed; using the current token until it expires", { err: (err as Error).message });
          held.renewAt = Date.now() + 1_000;
          return held.token;
        }
        throw err;
      })
      .finally(() => {
        this.pending = undefined;
      });
    return this.pending;
  };

  private async request(): Promise<string> {
    const { tokenUrl, clientId, clientSecret } = this.client;
    const what = `the token endpoint ${tokenUrl} (client ${clientId})`;
    const res = await fetch(tokenUrl, {
      method: "POST",
      headers: {
        authorization: basicCredentials(clientId, clientSecret),
        "content-type": "application/x-www-form-urlencoded",
        accept: "application/json",
      },
      body: new URLSearchParams({ grant_type: "client_credentials" }),
      signal: AbortSignal.timeout(this.timeoutMs),
    }).catch((err: unknown) => {
      const reason = (err as Error).name === "TimeoutError" ? `did not answer within ${this.timeoutMs} ms` : `cannot be reached: ${(err as Error).message}`;
      throw new Error(`${what} ${reason}`);
    });
    const body = (await res.json().catch(() => undefined)) as (TokenResponse & { error?: unknown; error_description?: unknown }) | undefined;
    if (!res.ok) {
      const said = body?.error ? `${String(body.error)}${body.error_description ? `: ${String(body.error_description)}` : ""}` : "no OAuth error";
      throw new Error(`${what} refused the service token with HTTP ${res.status} (${said})`);
    }
    if (typeof body?.access_token !== "string" || String(body.token_type).toLowerCase() !== "bearer" || typeof body.expires_in !== "number") {
      throw new Error(`${what} answered HTTP ${res.status} without a bearer access_token and expires_in`);
    }
    const now = Date.now();
    const expiresAt = now + body.expires_in * 1000;
    // A token shorter-lived than the renewal margin is renewed halfway through its life.
    const renewAt = Math.max(now + (body.expires_in * 1000) / 2, expiresAt - renewBeforeMs);
    this.current = { token: body.access_token, renewAt, expiresAt };
    return body.access_token;
  }
}
