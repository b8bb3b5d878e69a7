import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { type Any, anyPack, anyUnpack } from "@bufbuild/protobuf/wkt";
import { Metadata, type status } from "@grpc/grpc-js";
import { BadRequestSchema, PreconditionFailureSchema } from "@bazaar/proto/google/rpc/error_details_pb";
import { StatusSchema } from "@bazaar/proto/google/rpc/status_pb";
import type { FieldViolation, PreconditionViolation, RpcError, StatusDetails } from "../errors.ts";

/**
 * The trailer that carries a failed call's full `google.rpc.Status`, serialized, as gRPC's
 * richer error model defines it; every gRPC library that knows the model reads it.
 */
export const statusDetailsKey = "grpc-status-details-bin";

/**
 * The serialized `google.rpc.Status` of a failed call: the code, the message, and a detail for
 * each kind of data the error carries — a `google.rpc.BadRequest` (type URL
 * `type.googleapis.com/google.rpc.BadRequest`) listing field violations, a
 * `google.rpc.PreconditionFailure` listing failed preconditions.
 */
export function encodeStatusDetails(code: status, message: string, details: StatusDetails): Buffer {
  const packed: Any[] = [];
  if (details.violations?.length) {
    const fieldViolations = details.violations.map((v) => ({ field: v.field, description: v.description }));
    packed.push(anyPack(BadRequestSchema, create(BadRequestSchema, { fieldViolations })));
  }
  if (details.preconditions?.length) {
    const violations = details.preconditions.map((v) => ({ type: v.type, subject: v.subject, description: v.description }));
    packed.push(anyPack(PreconditionFailureSchema, create(PreconditionFailureSchema, { violations })));
  }
  return Buffer.from(toBinary(StatusSchema, create(StatusSchema, { code, message, details: packed })));
}

/** The trailer by which a server tells a client's retry policy when to try again; negative: never. */
export const retryPushbackKey = "grpc-retry-pushback-ms";

/**
 * The trailers a server ends a failed call with: the status details when the error carries
 * field violations or failed preconditions, and a pushback of -1 when it must not be repeated
 * elsewhere ({@link StatusDetails.doNotRetry}); else none (grpc-js sends grpc-status and
 * grpc-message itself).
 */
export function statusTrailers(err: RpcError): Metadata | undefined {
  const detailed = err.violations.length > 0 || err.preconditions.length > 0;
  if (!detailed && !err.doNotRetry) return undefined;
  const trailers = new Metadata();
  if (detailed) trailers.set(statusDetailsKey, encodeStatusDetails(err.code, err.message, err));
  if (err.doNotRetry) trailers.set(retryPushbackKey, "-1");
  return trailers;
}

/**
 * What the `grpc-status-details-bin` trailer of a failed call says: the field violations of
 * its `google.rpc.BadRequest` details and the failed preconditions of its
 * `google.rpc.PreconditionFailure` details. Empty when there is no such trailer or it cannot be
 * decoded (a peer's broken detail must not hide the status code and message it came with).
 */
export function statusDetailsOf(trailers: Metadata | undefined): { violations: FieldViolation[]; preconditions: PreconditionViolation[] } {
  const found = { violations: [] as FieldViolation[], preconditions: [] as PreconditionViolation[] };
  const raw = trailers?.get(statusDetailsKey)[0];
  if (!(raw instanceof Uint8Array)) return found;
  try {
    for (const any of fromBinary(StatusSchema, raw).details) {
      const badRequest = anyUnpack(any, BadRequestSchema);
      for (const v of badRequest?.fieldViolations ?? []) found.violations.push({ field: v.field, description: v.description });
      const failure = anyUnpack(any, PreconditionFailureSchema);
      for (const v of failure?.violations ?? []) found.preconditions.push({ type: v.type, subject: v.subject, description: v.description });
    }
    return found;
  } catch {
    return { violations: [], preconditions: [] };
  }
}
