/**
 * Service tokens end to end, against real processes: identity (with its development clients)
 * and payments, which verifies tokens against identity's JWKS. An off-the-shelf OAuth client
 * (openid-client, which knows nothing of Bazaar) discovers identity's token endpoint and gets
 * a token payments accepts; the platform's ServiceTokenSource gets one the same way.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { status } from "@grpc/grpc-js";
import * as oidc from "openid-client";
import { developmentClientSecret } from "@bazaar/platform/env";
import { createClient, type GrpcClient } from "@bazaar/platform/grpc/client";
import { configureLogging } from "@bazaar/platform/log";
import { ServiceTokenSource } from "@bazaar/platform/service-token";
import { bearer, freePort, type LaunchedProcess, rpcError } from "@bazaar/testkit/fixtures";
import { TestScope } from "@bazaar/testkit/test-scope";
import { PaymentsService } from "@bazaar/proto/bazaar/payments/v1/payments_pb";

const scope = new TestScope();
let identity: LaunchedProcess;
let payments: GrpcClient<typeof PaymentsService>;
let issuer: string;

beforeAll(async () => {
  configureLogging("service-token-test", "warn");
  // openid-client checks the discovery document's issuer is the URL it discovered from.
  const httpPort = freePort();
  issuer = `http://127.0.0.1:${httpPort}`;
  const auth = { JWT_ISSUER: issuer, LOG_LEVEL: "warn" };
  identity = await scope.launch("identity", { ...auth, HTTP_PORT: String(httpPort) });
  const paymentsProcess = await scope.launch("payments", { ...auth, JWKS_URL: `${issuer}/.well-known/jwks.json` });
  payments = scope.add(createClient(PaymentsService, paymentsProcess.grpcAddress, { defaultTimeoutMs: 10_000 }), (c) => c.close());
}, 120_000);

afterAll(() => scope.cleanup(), 60_000);

/** A refund of a payment that does not exist: NOT_FOUND means the caller got past authentication and the service role check. */
const refundNothing = (options?: ReturnType<typeof bearer>) =>
  rpcError(payments.refund({ idempotencyKey: crypto.randomUUID(), paymentId: crypto.randomUUID(), reason: "test" }, options));

/** openid-client's configuration for a client of identity, found through the discovery document. */
const discover = (clientId: string, secret: string) =>
  oidc.discovery(new URL(issuer), clientId, secret, oidc.ClientSecretBasic(secret), { execute: [oidc.allowInsecureRequests] });

/** identity's count of issued service tokens, from its /metrics. */
async function tokensIssued(): Promise<number> {
  const text = await (await fetch(`${identity.httpUrl}/metrics`)).text();
  return Number(/^bazaar_identity_token_requests_total\{[^}]*outcome="issued"[^}]*\} (\d+)$/m.exec(text)?.[1] ?? 0);
}

describe("an off-the-shelf OAuth client (openid-client)", () => {
  test("discovers identity, gets a service token with the client-credentials grant, and payments accepts it for a service-only RPC", async () => {
    const config = await discover("orders", developmentClientSecret("orders"));
    expect(config.serverMetadata().token_endpoint).toBe(`${issuer}/oauth2/token`);
    const tokens = await oidc.clientCredentialsGrant(config);
    expect(tokens.token_type).toBe("bearer"); // openid-client lower-cases it
    expect(tokens.expires_in).toBe(300);
    expect((await refundNothing(bearer(tokens.access_token))).code).toBe(status.NOT_FOUND);
    // Without the token the same call is refused: the NOT_FOUND above came from getting in.
    expect((await refundNothing()).code).toBe(status.UNAUTHENTICATED);
  }, 30_000);

  test("a wrong secret and an unknown client both get invalid_client (401), so client ids cannot be enumerated", async () => {
    const answers = [];
    for (const [clientId, secret] of [
      ["orders", "a-wrong-secret-for-orders"],
      ["warehouse", "a-wrong-secret-for-orders"],
    ] as const) {
      const err = await oidc.clientCredentialsGrant(await discover(clientId, secret)).catch((e: unknown) => e);
      // A 401 with a WWW-Authenticate challenge, as RFC 6749 section 5.2 asks for invalid_client.
      expect(err).toBeInstanceOf(oidc.WWWAuthenticateChallengeError);
      const challenge = err as oidc.WWWAuthenticateChallengeError;
      const { error, error_description } = (await challenge.response.json()) as Record<string, string>;
      answers.push({ httpStatus: challenge.status, scheme: challenge.cause[0]?.scheme, error, error_description });
    }
    expect(answers[0]).toEqual({
      httpStatus: 401,
      scheme: "basic",
      error: "invalid_client",
      error_description: "client authentication failed: the client id or secret is wrong",
    });
    expect(answers[1]).toEqual(answers[0]!);
  }, 30_000);
});

describe("ServiceTokenSource", () => {
  const tokenUrl = () => `${identity.httpUrl}/oauth2/token`;

  test("concurrent callers share one token request, and the token is reused until its renewal time", async () => {
    const source = new ServiceTokenSource({ tokenUrl: tokenUrl(), clientId: "bff", clientSecret: developmentClientSecret("bff") });
    const before = await tokensIssued();
    const tokens = await Promise.all(Array.from({ length: 10 }, () => source.token()));
    expect(new Set(tokens).size).toBe(1);
    expect(await source.token()).toBe(tokens[0]!);
    expect(await tokensIssued()).toBe(before + 1);
    expect((await refundNothing(bearer(tokens[0]!))).code).toBe(status.NOT_FOUND);
  }, 30_000);

  test("a token request with a wrong secret fails naming the endpoint, the client and identity's answer", async () => {
    const source = new ServiceTokenSource({ tokenUrl: tokenUrl(), clientId: "orders", clientSecret: "not-the-secret-of-orders" });
    await expect(source.token()).rejects.toThrow(
      `the token endpoint ${tokenUrl()} (client orders) refused the service token with HTTP 401 (invalid_client: client authentication failed: the client id or secret is wrong)`,
    );
  }, 30_000);

  test("an endpoint that does not answer in time fails within the timeout, naming it", async () => {
    const silent = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    scope.add(silent, (s) => s.stop(true));
    const url = `http://127.0.0.1:${silent.port}/oauth2/token`;
    const source = new ServiceTokenSource({ tokenUrl: url, clientId: "orders", clientSecret: developmentClientSecret("orders") }, { timeoutMs: 300 });
    const started = performance.now();
    await expect(source.token()).rejects.toThrow(`the token endpoint ${url} (client orders) did not answer within 300 ms`);
    expect(performance.now() - started).toBeLessThan(3_000);
  }, 30_000);
});
