/**
 * The real notifications process (src/main.ts) as the dev runner starts it: it migrates its
 * own database, consumes events from RabbitMQ, serves the caller's notifications over gRPC,
 * and exits 0 on SIGTERM.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { create, toBinary } from "@bufbuild/protobuf";
import { createClient, type GrpcClient } from "@bazaar/platform/grpc/client";
import { configureLogging } from "@bazaar/platform/log";
import { Broker } from "@bazaar/platform/messaging/broker";
import { events } from "@bazaar/platform/messaging/events";
import { eventually } from "@bazaar/testkit/eventually";
import { bearer, type LaunchedProcess } from "@bazaar/testkit/fixtures";
import type { TestIssuer } from "@bazaar/testkit/test-issuer";
import { TestScope } from "@bazaar/testkit/test-scope";
import { NotificationsService } from "@bazaar/proto/bazaar/notifications/v1/notifications_pb";

const scope = new TestScope();
let issuer: TestIssuer;
let service: LaunchedProcess;
let publisher: Broker;
let client: GrpcClient<typeof NotificationsService>;

beforeAll(async () => {
  configureLogging("notifications-test", "error");
  const vhost = await scope.vhost();
  issuer = await scope.issuer();
  service = await scope.launch("notifications", { AMQP_URL: vhost.url, JWKS_URL: issuer.jwksUrl, LOG_LEVEL: "warn" });
  publisher = scope.add(await Broker.connect(vhost.url, { service: "test-publisher" }), (b) => b.close());
  client = scope.add(createClient(NotificationsService, service.grpcAddress), (c) => c.close());
}, 60_000);

afterAll(() => scope.cleanup(), 60_000);

describe("the notifications process", () => {
  test("welcomes a user who registered, in that user's own listing", async () => {
    const userId = crypto.randomUUID();
    const payload = toBinary(events.userRegistered.schema, create(events.userRegistered.schema, { userId, displayName: "Grace" }));
    const id = crypto.randomUUID();
    expect((await publisher.publish([{ id, routingKey: events.userRegistered.routingKey, payload, headers: {} }])).acked).toEqual([id]);
    const auth = bearer(await issuer.token({ sub: userId }));
    const page = await eventually(
      async () => {
        const listed = await client.listNotifications({}, auth);
        return listed.notifications.length > 0 && listed;
      },
      { what: "the welcome notification", timeoutMs: 5_000 },
    );
    expect(page.notifications.map((n) => n.title)).toEqual(["Welcome to Bazaar, Grace!"]);
    expect(page.unreadCount).toBe(1);
    expect((await client.markRead({ all: true }, auth)).marked).toBe(1);
  });

  test("exits 0 on SIGTERM", async () => {
    expect(await service.child.stop("SIGTERM")).toBe(0);
  });
});
