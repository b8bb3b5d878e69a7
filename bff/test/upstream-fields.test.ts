import { afterAll, beforeAll, expect, test } from "bun:test";
import { status } from "@grpc/grpc-js";
import { Hono } from "hono";
import { RpcError } from "@bazaar/platform/errors";
import { configureLogging } from "@bazaar/platform/log";
import { startViolationsTestServer, type TestGrpcServer } from "@bazaar/testkit/fixtures";
import type { NotificationsService } from "@bazaar/proto/bazaar/notifications/v1/notifications_pb";
import { type ApiError, errorResponse } from "../src/errors.ts";

// How the BFF turns a service's field violations into its `fields`: from the BadRequest detail
// that reached its gRPC client, as data, whatever the status message says.

let upstream: TestGrpcServer<typeof NotificationsService>;
let app: Hono;

beforeAll(async () => {
  configureLogging("bff-upstream-fields-test", "warn");
  // A message shaped like "field: problem" but no violations: no field may come of it.
  upstream = await startViolationsTestServer(new RpcError(status.INVALID_ARGUMENT, "page_size: is only words here"));
  app = new Hono()
    .get("/list", async (c) => c.json(await upstream.client.listNotifications({ pageSize: 500, pageToken: "much too long" })))
    .get("/mark", async (c) => c.json(await upstream.client.markRead({})));
  app.onError(errorResponse);
});

afterAll(async () => {
  await upstream?.stop();
});

test("every field a service rejects comes back in fields, camelCased, with the service's words", async () => {
  const res = await app.request("/list");
  expect(res.status).toBe(400);
  const { error } = (await res.json()) as ApiError;
  expect(error.code).toBe("invalid_request");
  expect(error.fields).toEqual({
    pageSize: "must be between 1 and 100 (0 means 20), got 500",
    pageToken: "must be at most 8 characters, got 13",
  });
  expect(error.message).toContain("page_size");
});

test("a message that only looks like a field's problem gives no fields", async () => {
  const res = await app.request("/mark");
  expect(res.status).toBe(400);
  const { error } = (await res.json()) as ApiError;
  expect(error).toEqual({ code: "invalid_request", message: "page_size: is only words here" });
});
