import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { create, toBinary } from "@bufbuild/protobuf";
import { Client, credentials, Metadata, type ServiceError, status } from "@grpc/grpc-js";
import protobuf from "protobufjs";
import { InvalidArgumentError, RpcError } from "@bazaar/platform/errors";
import { methodPath } from "@bazaar/platform/grpc/definition";
import { encodeStatusDetails, statusDetailsKey, statusDetailsOf } from "@bazaar/platform/grpc/status-details";
import { configureLogging } from "@bazaar/platform/log";
import { startViolationsTestServer, type TestGrpcServer } from "@bazaar/testkit/fixtures";
import { ListNotificationsRequestSchema, NotificationsService } from "@bazaar/proto/bazaar/notifications/v1/notifications_pb";

// The chassis's error path for bad requests: a handler's violations leave the server as the
// grpc-status-details-bin trailer, checked here with a plain grpc-js client and decoded with
// protobufjs from Google's field numbers (not with Bazaar's generated code), and come back on
// Bazaar's client as data.

/** Google's google.rpc.Status and BadRequest as published, for decoding the trailer independently. */
const google = protobuf.parse(
  `
  syntax = "proto3";
  package google.rpc;
  message Any { string type_url = 1; bytes value = 2; }
  message Status { int32 code = 1; string message = 2; repeated Any details = 3; }
  message BadRequest {
    message FieldViolation { string field = 1; string description = 2; string reason = 3; }
    repeated FieldViolation field_violations = 1;
  }
  message PreconditionFailure {
    message Violation { string type = 1; string subject = 2; string description = 3; }
    repeated Violation violations = 1;
  }
`,
  { keepCase: true },
).root;
const StatusType = google.lookupType("google.rpc.Status");
const BadRequestType = google.lookupType("google.rpc.BadRequest");
const PreconditionFailureType = google.lookupType("google.rpc.PreconditionFailure");

let server: TestGrpcServer<typeof NotificationsService>;
let plain: Client;

beforeAll(async () => {
  configureLogging("status-details-test", "warn");
  // A problem that names no field: nothing for a BadRequest to carry.
  server = await startViolationsTestServer(new InvalidArgumentError("this request names nothing to mark"));
  plain = new Client(server.address, credentials.createInsecure());
});

afterAll(async () => {
  plain?.close();
  await server?.stop();
});

/** ListNotifications through a plain grpc-js client: the error it ends with. */
function plainListNotifications(request: { pageSize: number; pageToken: string }): Promise<ServiceError> {
  const method = NotificationsService.method.listNotifications;
  return new Promise((resolve, reject) => {
    plain.makeUnaryRequest(
      methodPath(method),
      (r: typeof request) => Buffer.from(toBinary(ListNotificationsRequestSchema, create(ListNotificationsRequestSchema, r))),
      (bytes: Buffer) => bytes,
      request,
      new Metadata(),
      { deadline: Date.now() + 5_000 },
      (err) => (err ? resolve(err) : reject(new Error("the call succeeded; it should have failed"))),
    );
  });
}

describe("an INVALID_ARGUMENT with field violations", () => {
  test("reaches a plain grpc-js client with a grpc-status-details-bin trailer: a google.rpc.Status holding one BadRequest", async () => {
    const err = await plainListNotifications({ pageSize: 500, pageToken: "" });
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    // The message stays for people, naming the field.
    expect(err.details).toBe("page_size: must be between 1 and 100 (0 means 20), got 500");
    const raw = err.metadata.get(statusDetailsKey);
    expect(raw).toHaveLength(1);
    expect(raw[0]).toBeInstanceOf(Buffer);
    const details = StatusType.toObject(StatusType.decode(raw[0] as Buffer), { defaults: true }) as {
      code: number;
      message: string;
      details: { type_url: string; value: Uint8Array }[];
    };
    expect(details.code).toBe(status.INVALID_ARGUMENT);
    expect(details.message).toBe(err.details);
    expect(details.details.map((d) => d.type_url)).toEqual(["type.googleapis.com/google.rpc.BadRequest"]);
    const badRequest = BadRequestType.toObject(BadRequestType.decode(details.details[0]!.value), { defaults: true });
    expect(badRequest).toEqual({
      field_violations: [{ field: "page_size", description: "must be between 1 and 100 (0 means 20), got 500", reason: "" }],
    });
  });

  test("with two bad fields reports both, in the trailer and in the message", async () => {
    const err = await plainListNotifications({ pageSize: -1, pageToken: "much too long" });
    expect(err.details).toBe("page_size: must be between 1 and 100 (0 means 20), got -1; page_token: must be at most 8 characters, got 13");
    expect(statusDetailsOf(err.metadata).violations).toEqual([
      { field: "page_size", description: "must be between 1 and 100 (0 means 20), got -1" },
      { field: "page_token", description: "must be at most 8 characters, got 13" },
    ]);
  });

  test("comes out of Bazaar's client as an RpcError whose violations are the data", async () => {
    const err = await server.client.listNotifications({ pageSize: 101, pageToken: "much too long" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RpcError);
    expect((err as RpcError).code).toBe(status.INVALID_ARGUMENT);
    expect((err as RpcError).violations.map((v) => v.field)).toEqual(["page_size", "page_token"]);
  });
});

test("an INVALID_ARGUMENT that names no field has no status details trailer", async () => {
  const err = await server.client.markRead({}).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(RpcError);
  expect([(err as RpcError).code, (err as RpcError).message, (err as RpcError).violations]).toEqual([
    status.INVALID_ARGUMENT,
    "this request names nothing to mark",
    [],
  ]);
});

test("trailers without status details, or with ones that do not decode, give no violations", () => {
  expect(statusDetailsOf(undefined).violations).toEqual([]);
  expect(statusDetailsOf(new Metadata()).violations).toEqual([]);
  const broken = new Metadata();
  broken.set(statusDetailsKey, Buffer.from([0x0a, 0xff]));
  expect(statusDetailsOf(broken).violations).toEqual([]);
});

test("the status details Bazaar's own decoder reads are the ones protobufjs encodes from Google's definitions", () => {
  const value = BadRequestType.encode({ field_violations: [{ field: "lines[0].quantity", description: "must be between 1 and 99, got 0" }] }).finish();
  const bytes = StatusType.encode({ code: 3, message: "m", details: [{ type_url: "type.googleapis.com/google.rpc.BadRequest", value }] }).finish();
  const trailers = new Metadata();
  trailers.set(statusDetailsKey, Buffer.from(bytes));
  expect(statusDetailsOf(trailers).violations).toEqual([{ field: "lines[0].quantity", description: "must be between 1 and 99, got 0" }]);
});

test("a failed precondition's violations travel as a google.rpc.PreconditionFailure, both ways", () => {
  const shortage = { type: "STOCK", subject: "0b8e6a52-3f1c-4d2e-9a7b-5c4d3e2f1a0b", description: "not enough stock" };
  const ours = encodeStatusDetails(status.FAILED_PRECONDITION, "not enough stock", { preconditions: [shortage] });
  const decoded = StatusType.decode(ours) as unknown as { code: number; details: { type_url: string; value: Uint8Array }[] };
  expect(decoded.code).toBe(status.FAILED_PRECONDITION);
  expect(decoded.details.map((d) => d.type_url)).toEqual(["type.googleapis.com/google.rpc.PreconditionFailure"]);
  expect(PreconditionFailureType.toObject(PreconditionFailureType.decode(decoded.details[0]!.value))).toEqual({ violations: [shortage] });

  const value = PreconditionFailureType.encode({ violations: [shortage] }).finish();
  const bytes = StatusType.encode({ code: 9, message: "m", details: [{ type_url: "type.googleapis.com/google.rpc.PreconditionFailure", value }] }).finish();
  const trailers = new Metadata();
  trailers.set(statusDetailsKey, Buffer.from(bytes));
  expect(statusDetailsOf(trailers)).toEqual({ violations: [], preconditions: [shortage] });
});
