/**
 * identity's OAuth 2.0 token endpoint (client credentials, RFC 6749 section 4.4) over real
 * HTTP, wired as main.ts wires it: its own signing keys on a fresh database, the failure
 * throttle in Redis under a prefix of the test's own, the discovery document beside it.
 * (platform/test/service-token.test.ts drives a real identity process with an off-the-shelf
 * OAuth client and the platform's ServiceTokenSource.)
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Hono } from "hono";
import { AccessTokenVerifier } from "@bazaar/platform/auth";
import { connectRedis } from "@bazaar/platform/cache";
import { developmentClientSecret } from "@bazaar/platform/env";
import { configureLogging } from "@bazaar/platform/log";
import { basicCredentials } from "@bazaar/platform/service-token";
import { testEnv } from "@bazaar/testkit/fixtures";
import { TestScope } from "@bazaar/testkit/test-scope";
import { AccessTokenIssuer } from "../src/access-tokens.ts";
import * as schema from "../src/db/schema.ts";
import { FailureDelays } from "../src/failure-delays.ts";
import { developmentOAuthClients, mintClient, oauthClientsVar } from "../src/oauth-clients.ts";
import { hashPassword } from "../src/passwords.ts";
import { type SigningKeySettings, SigningKeys } from "../src/signing-keys.ts";
import { addTokenEndpoint, basicClientCredentials, type TokenThrottleOptions } from "../src/token-endpoint.ts";
import { addWellKnownRoutes } from "../src/well-known.ts";

const scope = new TestScope();
const issuer = "https://identity.bazaar.local";
const audience = "bazaar";
// A secret with every character client_secret_basic must form-urlencode: ":", "+", "%", " ", "é".
const oddSecret = "colon:plus+percent%space é-and-long-enough";
let keys: SigningKeys;
const keySettings: SigningKeySettings = { rotationSeconds: 30 * 86_400, leadSeconds: 3600, longestTokenTtlSeconds: 900, reloadMs: 60_000 };
let orders: { clientId: string; secret: string };
let clients: Map<string, string>;
let endpoint: string;
let base: string;
let verifier: AccessTokenVerifier;

/** Serves the token endpoint and discovery document on a free port, with a Redis prefix of its own. */
async function serveIdentityHttp(throttle?: Partial<TokenThrottleOptions>): Promise<string> {
  const redis = scope.add(await connectRedis(testEnv.REDIS_URL, scope.redisPrefix()), (r) => r.close());
  const app = new Hono();
  addWellKnownRoutes(app, { issuer, jwks: () => keys.jwks(), cacheSeconds: 300 });
  addTokenEndpoint(app, new AccessTokenIssuer(keys, { issuer, audience }), new FailureDelays(redis, "token endpoint"), {
    clients,
    ttlSeconds: 300,
    ...(throttle ? { throttle } : {}),
  });
  const server = scope.add(Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: app.fetch }), (s) => s.stop(true));
  return `http://127.0.0.1:${server.port}`;
}

beforeAll(async () => {
  configureLogging("identity", "error");
  keys = await SigningKeys.open(await scope.database("identity", schema), keySettings);
  const minted = await mintClient("orders");
  orders = { clientId: minted.clientId, secret: minted.secret };
  clients = new Map([
    ["orders", minted.entry.slice("orders:".length)],
    ["odd", await hashPassword(oddSecret)],
  ]);
  base = await serveIdentityHttp();
  endpoint = `${base}/oauth2/token`;
  verifier = new AccessTokenVerifier({ jwksUrl: `${base}/.well-known/jwks.json`, issuer, audience });
}, 60_000);

afterAll(() => scope.cleanup(), 60_000);

interface Answer {
  status: number;
  body: Record<string, unknown>;
  headers: Headers;
}

/** POSTs a token request; `authorization` undefined sends none. */
async function requestToken(
  options: { authorization?: string | undefined; body?: string; contentType?: string; url?: string; method?: string } = {},
): Promise<Answer> {
  const headers: Record<string, string> = { "content-type": options.contentType ?? "application/x-www-form-urlencoded" };
  if (options.authorization !== undefined) headers.authorization = options.authorization;
  const res = await fetch(options.url ?? endpoint, {
    method: options.method ?? "POST",
    headers,
    body: options.method === "GET" ? undefined : (options.body ?? "grant_type=client_credentials"),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown>, headers: res.headers };
}

const asOrders = () => basicCredentials(orders.clientId, orders.secret);

describe("POST /oauth2/token", () => {
  test("a client with its secret gets a bearer token for service:<client id> with the role service, valid 300 s and not cacheable", async () => {
    const res = await requestToken({ authorization: asOrders() });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ access_token: expect.any(String), token_type: "Bearer", expires_in: 300 });
    expect(res.headers.get("cache-control")).toBe("no-store");
    expect(res.headers.get("pragma")).toBe("no-cache");
    const token = res.body.access_token as string;
    expect(await verifier.verify(token)).toEqual({ subject: "service:orders", userId: undefined, roles: ["service"] });
    const claims = JSON.parse(Buffer.from(token.split(".")[1]!, "base64url").toString()) as Record<string, number>;
    expect(claims.exp! - claims.iat!).toBe(300);
  });

  test("client_secret_basic is decoded as RFC 6749 section 2.3.1 says: id and secret are form-urlencoded before Basic", async () => {
    expect((await requestToken({ authorization: basicCredentials("odd", oddSecret) })).status).toBe(200);
    expect(basicClientCredentials(basicCredentials("odd", oddSecret))).toEqual({ clientId: "odd", secret: oddSecret });
    // The same secret sent without form-urlencoding it first is not that secret.
    const raw = `Basic ${Buffer.from(`odd:${oddSecret}`).toString("base64")}`;
    const refused = await requestToken({ authorization: raw });
    expect(refused.status).toBe(401);
    expect(refused.body.error).toBe("invalid_client");
  });

  test("a wrong secret and an unknown client get one and the same answer: 401 invalid_client with WWW-Authenticate: Basic", async () => {
    const wrong = await requestToken({ authorization: basicCredentials("orders", "not-the-secret-of-orders") });
    const unknown = await requestToken({ authorization: basicCredentials("warehouse", "not-the-secret-of-orders") });
    for (const res of [wrong, unknown]) {
      expect(res.status).toBe(401);
      expect(res.headers.get("www-authenticate")).toBe('Basic realm="bazaar"');
      expect(res.headers.get("cache-control")).toBe("no-store");
    }
    expect(wrong.body).toEqual({ error: "invalid_client", error_description: "client authentication failed: the client id or secret is wrong" });
    expect(unknown.body).toEqual(wrong.body);
  });

  test("requests that are not a client-credentials request get the RFC 6749 section 5.2 error that says what to fix", async () => {
    const cases: [string, Parameters<typeof requestToken>[0], number, string, string][] = [
      [
        "JSON instead of a form",
        { authorization: asOrders(), contentType: "application/json", body: '{"grant_type":"client_credentials"}' },
        400,
        "invalid_request",
        "x-www-form-urlencoded",
      ],
      ["no grant_type", { authorization: asOrders(), body: "" }, 400, "invalid_request", "grant_type=client_credentials"],
      [
        "the password grant",
        { authorization: asOrders(), body: "grant_type=password&username=a&password=b" },
        400,
        "unsupported_grant_type",
        "client_credentials",
      ],
      ["a scope", { authorization: asOrders(), body: "grant_type=client_credentials&scope=admin" }, 400, "invalid_scope", "omit scope"],
      [
        "a repeated parameter",
        { authorization: asOrders(), body: "grant_type=client_credentials&grant_type=client_credentials" },
        400,
        "invalid_request",
        "more than once",
      ],
      ["no client authentication", { body: "grant_type=client_credentials" }, 401, "invalid_client", "Authorization: Basic"],
      [
        "client_secret_post",
        { body: `grant_type=client_credentials&client_id=orders&client_secret=${orders.secret}` },
        401,
        "invalid_client",
        "client_secret_basic only",
      ],
      [
        "two ways of authenticating",
        { authorization: asOrders(), body: `grant_type=client_credentials&client_secret=${orders.secret}` },
        400,
        "invalid_request",
        "one way only",
      ],
      [
        "another client_id in the body",
        { authorization: asOrders(), body: "grant_type=client_credentials&client_id=bff" },
        400,
        "invalid_request",
        "client_id",
      ],
      [
        "a body over 4 KiB",
        { authorization: asOrders(), body: `grant_type=client_credentials&x=${"a".repeat(5000)}` },
        413,
        "invalid_request",
        "larger than 4096 bytes",
      ],
      ["GET", { authorization: asOrders(), method: "GET" }, 405, "invalid_request", "use POST"],
    ];
    for (const [what, request, status, error, hint] of cases) {
      const res = await requestToken(request);
      expect({ what, status: res.status, error: res.body.error }).toEqual({ what, status, error });
      expect(res.body.error_description as string, what).toContain(hint);
      // error_description: printable ASCII without quote or backslash (RFC 6749 section 5.2).
      expect(res.body.error_description as string, what).toMatch(/^[\x20\x21\x23-\x5b\x5d-\x7e]+$/);
      expect(res.headers.get("cache-control"), what).toBe("no-store");
    }
  });
});

describe("guessing a client's secret", () => {
  /** Guesses at `clientId` with `parallel` requests at a time for `ms`; the answers by status. */
  async function guessAtFullSpeed(url: string, clientId: string, ms: number, parallel = 8) {
    const statuses: number[] = [];
    const end = Date.now() + ms;
    await Promise.all(
      Array.from({ length: parallel }, async () => {
        while (Date.now() < end) {
          statuses.push((await requestToken({ url, authorization: basicCredentials(clientId, `guess-${crypto.randomUUID()}`) })).status);
        }
      }),
    );
    return { checked: statuses.filter((s) => s === 401).length, refused: statuses.filter((s) => s === 429).length };
  }

  test("a full-speed guess from one address is slowed to a crawl: 5 free tries, then one per doubling delay (429 with Retry-After)", async () => {
    const url = `${await serveIdentityHttp()}/oauth2/token`;
    const seconds = 4;
    const { checked, refused } = await guessAtFullSpeed(url, "orders", seconds * 1000);
    console.log(
      `token endpoint under a full-speed guess: ${checked} guesses checked in ${seconds} s (${(checked / seconds).toFixed(1)}/s), ${refused} refused`,
    );
    // 5 free failures, then one after 1 s and one after 2 s more: at most 7 in 4 s (the old RPC checked ~1,000 a second).
    expect(checked).toBeGreaterThanOrEqual(5);
    expect(checked).toBeLessThanOrEqual(7);
    expect(refused).toBeGreaterThan(0);
    const waiting = await requestToken({ url, authorization: basicCredentials("orders", "one more guess") });
    expect(waiting.status).toBe(429);
    expect(waiting.body.error).toBe("temporarily_unavailable");
    expect(waiting.body.error_description).toMatch(/^too many failed client authentications for this client or from this address; try again in \d+ seconds?$/);
    expect(Number(waiting.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    // While the wait lasts even the right secret is refused, so a guess cannot be confirmed during it.
    expect((await requestToken({ url, authorization: asOrders() })).status).toBe(429);
  }, 30_000);

  test("a guess spread over many addresses is slowed per client id, and leaves the other clients alone", async () => {
    // Per-address counting off, so only the per-client count acts (every test request comes from 127.0.0.1).
    const lax = { windowMs: 60_000, freeFailures: 1_000, baseDelayMs: 1_000, maxDelayMs: 1_000 };
    const url = `${await serveIdentityHttp({ perAddress: lax, perClient: { windowMs: 60_000, freeFailures: 3, baseDelayMs: 60_000, maxDelayMs: 60_000 } })}/oauth2/token`;
    const { checked, refused } = await guessAtFullSpeed(url, "odd", 1_000);
    expect(checked).toBe(3);
    expect(refused).toBeGreaterThan(0);
    expect((await requestToken({ url, authorization: basicCredentials("odd", oddSecret) })).status).toBe(429);
    expect((await requestToken({ url, authorization: asOrders() })).status).toBe(200);
  }, 30_000);

  test("a successful authentication does not count as a failure", async () => {
    const url = `${await serveIdentityHttp({ perClient: { windowMs: 60_000, freeFailures: 2, baseDelayMs: 60_000, maxDelayMs: 60_000 } })}/oauth2/token`;
    for (let i = 0; i < 5; i++) expect((await requestToken({ url, authorization: asOrders() })).status).toBe(200);
  });
});

describe("discovery and configuration", () => {
  test("the OpenID discovery document names the token endpoint, the client_credentials grant and client_secret_basic", async () => {
    const doc = (await (await fetch(`${base}/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
    expect(doc).toMatchObject({
      issuer,
      token_endpoint: endpoint,
      grant_types_supported: ["client_credentials"],
      token_endpoint_auth_methods_supported: ["client_secret_basic"],
    });
  });

  test("the development clients are orders and the BFF, hashed from the development secrets the callers default to", async () => {
    const dev = oauthClientsVar.parse(undefined);
    expect([...dev.keys()]).toEqual(["orders", "bff"]);
    for (const [id, hash] of dev) expect(await Bun.password.verify(developmentClientSecret(id), hash)).toBe(true);
    expect(oauthClientsVar.parse(developmentOAuthClients)).toEqual(dev);
  });

  test("OAUTH_CLIENTS takes entries separated by spaces or newlines and names each bad one", () => {
    const hash = clients.get("orders")!;
    expect([...oauthClientsVar.parse(`orders:${hash}\n  odd:${hash}`).keys()]).toEqual(["orders", "odd"]);
    const bad = oauthClientsVar.safeParse(`orders:${hash} Bad:${hash} bff:not-a-hash orders:${hash}`);
    expect(bad.error?.issues.map((i) => i.message)).toEqual([
      'entry 2 ("Bad"): the part before ":" must be a client id: a lower-case letter, then 1 to 31 lower-case letters, digits or dashes',
      'entry 3 ("bff"): after "bff:" must come an argon2id hash ($argon2id$v=19$m=…), as `bun run oauth:client bff` prints',
      'entry 4 ("orders"): client orders is listed twice',
    ]);
    expect(oauthClientsVar.safeParse(" ").error?.issues[0]?.message).toBe("must list at least one client as <client id>:<argon2id hash>");
  });
});
