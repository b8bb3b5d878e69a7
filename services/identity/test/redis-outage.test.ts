/**
 * Identity with its Redis (a redis-server of the test's own) stopped: sign-in and sign-up are
 * refused UNAVAILABLE naming Redis — a Redis outage must not open a window of unthrottled
 * password guessing — while the token endpoint keeps issuing service tokens (minted client
 * secrets are not guessable, and every service renews its token there).
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { developmentClientSecret } from "@bazaar/platform/env";
import { configureLogging } from "@bazaar/platform/log";
import { basicCredentials } from "@bazaar/platform/service-token";
import { eventually } from "@bazaar/testkit/eventually";
import { registerAndLogin, rpcError } from "@bazaar/testkit/fixtures";
import { PrivateRedis } from "@bazaar/testkit/private-servers";
import { startTestPlatform, type TestPlatform } from "@bazaar/testkit/test-platform";

let redis: PrivateRedis;
let platform: TestPlatform;
let account: { email: string; password: string };

beforeAll(async () => {
  configureLogging("identity-redis-outage-test", "error");
  redis = await PrivateRedis.create();
  platform = await startTestPlatform({}, { only: ["identity"], servers: { redisUrl: redis.url } });
  account = await registerAndLogin(platform.clients.identity);
}, 60_000);

afterAll(async () => {
  await platform?.cleanup();
  await redis?.destroy();
}, 30_000);

const serviceToken = () =>
  fetch(`${platform.httpUrl("identity")}/oauth2/token`, {
    method: "POST",
    headers: { authorization: basicCredentials("orders", developmentClientSecret("orders")), "content-type": "application/x-www-form-urlencoded" },
    body: "grant_type=client_credentials",
    signal: AbortSignal.timeout(5_000),
  });

test("with Redis down, Login and Register answer UNAVAILABLE naming Redis (no attempt goes uncounted), the token endpoint still issues tokens, and sign-in works again once Redis is back", async () => {
  await redis.stop();
  try {
    const login = await rpcError(platform.clients.identity.login({ email: account.email, password: account.password }));
    expect({ code: login.codeName, namesRedis: login.message.includes("Redis") }).toEqual({ code: "UNAVAILABLE", namesRedis: true });
    const wrong = await rpcError(platform.clients.identity.login({ email: account.email, password: "a wrong guess" }));
    expect(wrong.codeName).toBe("UNAVAILABLE");
    const register = await rpcError(
      platform.clients.identity.register({ email: `new-${Date.now()}@bazaar.test`, password: "correct horse battery", displayName: "New" }),
    );
    expect(register.codeName).toBe("UNAVAILABLE");
    const token = await serviceToken();
    expect(token.status).toBe(200);
  } finally {
    await redis.start();
  }
  const { tokens } = await eventually(() => platform.clients.identity.login({ email: account.email, password: account.password }), {
    what: "Login to work again",
    timeoutMs: 10_000,
  });
  expect(tokens?.accessToken).toBeTruthy();
}, 60_000);
