/**
 * Identity as a real process (two replicas on one fresh database and one RabbitMQ vhost):
 * the discovery and JWKS documents over HTTP, tokens verified by the platform's verifier
 * against the published JWKS, the seeded admin, UserRegistered delivered on the exchange,
 * and replicas that start together agreeing on one signing key.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { fromBinary } from "@bufbuild/protobuf";
import amqp, { type ChannelModel, type ConsumeMessage } from "amqplib";
import postgres from "postgres";
import { AccessTokenVerifier } from "@bazaar/platform/auth";
import { ensureDatabase } from "@bazaar/platform/db";
import { configureLogging } from "@bazaar/platform/log";
import { createClient, type GrpcClient } from "@bazaar/platform/grpc/client";
import { events, eventsExchange } from "@bazaar/platform/messaging/events";
import { eventually } from "@bazaar/testkit/eventually";
import { bearer, type LaunchedProcess, registerAndLogin, uniqueName } from "@bazaar/testkit/fixtures";
import { type ScopedVhost, TestScope } from "@bazaar/testkit/test-scope";
import { UserRegisteredSchema } from "@bazaar/proto/bazaar/events/v1/events_pb";
import { IdentityService } from "@bazaar/proto/bazaar/identity/v1/identity_pb";

const issuer = "https://identity.test.bazaar";
const audience = "bazaar-test";
const scope = new TestScope();
const databaseUrl = scope.databaseUrl("identity");
let vhost: ScopedVhost;
let replicas: LaunchedProcess[] = [];
let client: GrpcClient<typeof IdentityService>;
let amqpConnection: ChannelModel;
const delivered: ConsumeMessage[] = [];

beforeAll(async () => {
  configureLogging("identity-test", "warn");
  vhost = await scope.vhost();
  // Created up front: two processes creating one database at the same moment can hit a unique
  // violation that platform/src/db.ts (ensureDatabase) does not yet treat as "exists already".
  await ensureDatabase(databaseUrl);
  const env = { DATABASE_URL: databaseUrl, AMQP_URL: vhost.url, JWT_ISSUER: issuer, JWT_AUDIENCE: audience, LOG_LEVEL: "warn" };
  const started = await Promise.allSettled([scope.launch("identity", env), scope.launch("identity", env)]);
  replicas = started.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
  const failed = started.find((r) => r.status === "rejected");
  if (failed) throw failed.reason; // afterAll stops the replica that did start
  client = scope.add(createClient(IdentityService, replicas[0]!.grpcAddress), (c) => c.close());
  // A queue of the test's own on the events exchange (which the replicas declared).
  amqpConnection = scope.add(await amqp.connect(vhost.url), (c) => c.close());
  const channel = await amqpConnection.createChannel();
  const { queue } = await channel.assertQueue("", { exclusive: true });
  await channel.bindQueue(queue, eventsExchange, events.userRegistered.routingKey);
  await channel.consume(queue, (m) => m && delivered.push(m), { noAck: true });
}, 60_000);

afterAll(() => scope.cleanup(), 60_000);

async function json(url: string): Promise<{ body: Record<string, unknown>; headers: Headers }> {
  const res = await fetch(url);
  expect(res.status).toBe(200);
  return { body: (await res.json()) as Record<string, unknown>, headers: res.headers };
}

describe("well-known documents", () => {
  test("the OpenID discovery document names the issuer, the JWKS URL, the token endpoint and ES256", async () => {
    const { body, headers } = await json(`${replicas[0]!.httpUrl}/.well-known/openid-configuration`);
    expect(body.issuer).toBe(issuer);
    expect(body.jwks_uri).toBe(`${replicas[0]!.httpUrl}/.well-known/jwks.json`);
    expect(body.token_endpoint).toBe(`${replicas[0]!.httpUrl}/oauth2/token`);
    expect(body.grant_types_supported).toEqual(["client_credentials"]);
    expect(body.id_token_signing_alg_values_supported).toEqual(["ES256"]);
    expect(body.subject_types_supported).toEqual(["public"]);
    expect(headers.get("cache-control")).toBe("public, max-age=300");
  });

  test("the JWKS publishes one public P-256 key with kid, alg and use, cacheable for a few minutes", async () => {
    const { body, headers } = await json(`${replicas[0]!.httpUrl}/.well-known/jwks.json`);
    const keys = body.keys as Record<string, unknown>[];
    expect(keys).toHaveLength(1);
    expect(keys[0]).toMatchObject({ kty: "EC", crv: "P-256", alg: "ES256", use: "sig" });
    expect(keys[0]!.kid).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(keys[0]).not.toHaveProperty("d");
    expect(headers.get("cache-control")).toBe("public, max-age=300");
    expect(headers.get("content-type")).toContain("application/jwk-set+json");
  });

  test("replicas that started together on one database publish the same single key", async () => {
    const [a, b] = await Promise.all(replicas.map(async (r) => (await json(`${r.httpUrl}/.well-known/jwks.json`)).body));
    expect(b).toEqual(a!);
  });
});

describe("tokens", () => {
  test("register then login (twice): the access tokens verify against the published JWKS with the right claims", async () => {
    const { body: discovery } = await json(`${replicas[1]!.httpUrl}/.well-known/openid-configuration`);
    const verifier = new AccessTokenVerifier({ jwksUrl: discovery.jwks_uri as string, issuer, audience });
    const email = `${uniqueName("buyer")}@example.com`;
    const first = await registerAndLogin(client, { email, displayName: "Buyer" });
    const login = await client.login({ email, password: first.password });
    for (const token of [first.tokens.accessToken, login.tokens!.accessToken]) {
      expect(await verifier.verify(token)).toEqual({ subject: first.user.id, userId: first.user.id, roles: ["customer"] });
      const claims = JSON.parse(Buffer.from(token.split(".")[1]!, "base64url").toString()) as Record<string, number | string>;
      expect(claims.exp).toBe(Number(claims.iat) + 900);
      expect(Math.abs(Number(claims.iat) - Date.now() / 1000)).toBeLessThan(30);
    }
    // A token from one replica is good at the other: same key.
    const other = createClient(IdentityService, replicas[1]!.grpcAddress);
    try {
      const { user } = await other.getUser({}, bearer(login.tokens!.accessToken));
      expect(user?.email).toBe(email);
    } finally {
      other.close();
    }
  });

  test("the seeded admin (admin@bazaar.local / bazaar-admin) signs in as admin and reads other users", async () => {
    const customer = await registerAndLogin(client, { displayName: "C" });
    const admin = await client.login({ email: "admin@bazaar.local", password: "bazaar-admin" });
    expect(admin.user?.roles).toEqual(["customer", "admin"]);
    const { user } = await client.getUser({ id: customer.user!.id }, bearer(admin.tokens!.accessToken));
    expect(user?.id).toBe(customer.user!.id);
  });
});

describe("UserRegistered", () => {
  test("is published on bazaar.events as user.registered.v1, with the outbox row id as message id", async () => {
    const email = `${uniqueName("evt")}@example.com`;
    const { user } = await registerAndLogin(client, { email, displayName: "Event Person" });
    const message = await eventually(() => delivered.find((m) => fromBinary(UserRegisteredSchema, m.content).userId === user!.id), {
      what: "the UserRegistered message",
    });
    const event = fromBinary(UserRegisteredSchema, message.content);
    expect(event.email).toBe(email);
    expect(event.displayName).toBe("Event Person");
    expect(message.fields.routingKey).toBe("user.registered.v1");
    const sql = postgres(databaseUrl, { max: 1, onnotice: () => {} });
    try {
      const rows = await sql<
        { id: string; payload: Buffer; published_at: Date | null }[]
      >`select id, payload, published_at from outbox where routing_key = 'user.registered.v1'`;
      const row = rows.find((r) => fromBinary(UserRegisteredSchema, r.payload).userId === user!.id);
      expect(message.properties.messageId).toBe(row!.id);
      expect(row!.published_at).toBeInstanceOf(Date);
    } finally {
      await sql.end({ timeout: 5 });
    }
    expect(message.properties.headers?.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/);
  });
});
