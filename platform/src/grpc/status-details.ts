import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { anyPack, anyUnpack } from "@bufbuild/protobuf/wkt";
import { Metadata, type status } from "@grpc/grpc-js";
import { BadRequestSchema } from "@bazaar/proto/google/rpc/error_details_pb";
import { StatusSchema } from "@bazaar/proto/google/rpc/status_pb";
import type { FieldViolation, RpcError } from "../errors.ts";

/**
 * The trailer that carries a failed call's full `google.rpc.Status`, serialized, as gRPC's
 * richer error model defines it; every gRPC library that knows the model reads it.
 */
export const statusDetailsKey = "grpc-status-details-bin";

/**
 * The serialized `google.rpc.Status` of a failed call whose request had field problems: the
 * code, the message, and one detail, a `google.rpc.BadRequest` (type URL
 * `type.googleapis.com/google.rpc.BadRequest`) listing the violations.
 */
export function encodeStatusDetails(code: status, message: string, violations: readonly FieldViolation[]): Buffer {
  const badRequest = create(BadRequestSchema, {
    fieldViolations: violations.map((v) => ({ field: v.field, description: v.description })),
  });
  const details = create(StatusSchema, { code, message, details: [anyPack(BadRequestSchema, badRequest)] });
  return Buffer.from(toBinary(StatusSchema, details));
}

/**
 * The trailers a server ends a failed call with: the status details when the error carries
 * field violations, else none (grpc-js sends grpc-status and grpc-message itself).
 */
export function statusTrailers(err: RpcError): Metadata | undefined {
  if (err.violations.length === 0) return undefined;
  const trailers = new Metadata();
  trailers.set(statusDetailsKey, encodeStatusDetails(err.code, err.message, err.violations));
  return trailers;
}

/**
 * The field violations in a call's trailers: those of every `google.rpc.BadRequest` detail of
 * the `grpc-status-details-bin` trailer, or none when there is no such trailer or it cannot be
 * decoded (a peer's broken detail must not hide the status code and message it came with).
 */
export function violationsOf(trailers: Metadata | undefined): FieldViolation[] {
  const raw = trailers?.get(statusDetailsKey)[0];
  if (!(raw instanceof Uint8Array)) return [];
  try {
    const details = fromBinary(StatusSchema, raw);
    return details.details.flatMap((any) => {
      const badRequest = anyUnpack(any, BadRequestSchema);
      return badRequest ? badRequest.fieldViolations.map((v) => ({ field: v.field, description: v.description })) : [];
    });
  } catch {
    return [];
  }
}
