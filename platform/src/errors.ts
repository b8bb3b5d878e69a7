import { status } from "@grpc/grpc-js";

/**
 * Domain errors. Domain code throws these (or subclasses of them) without knowing about
 * transports; the gRPC error-mapping interceptor turns each into its status code, and the BFF
 * turns status codes into HTTP codes. Messages are for people: say what was wrong and how to
 * fix it.
 */
export class DomainError extends Error {
  override name = "DomainError";
}

/**
 * One problem with one field of a request. Between services it travels as a
 * `google.rpc.BadRequest` field violation (see grpc/status-details.ts), so callers read it as
 * data.
 */
export interface FieldViolation {
  /**
   * The path to the field in proto field names, e.g. "lines[1].product_id"; "" for the value
   * a rule is checking (see validation.ts) or a problem with no one field.
   */
  readonly field: string;
  /** What is wrong and how to fix it, e.g. "must be between 1 and 100, got 500". */
  readonly description: string;
}

/** A violation as people read it: "field: description", or the description alone. */
function describeViolation(v: FieldViolation): string {
  return v.field ? `${v.field}: ${v.description}` : v.description;
}

/**
 * The request is malformed: fields are missing, out of range or badly formatted. It carries
 * every violation found as data; its message lists them ("page_size: must be …", joined by
 * "; " when there are several).
 */
export class InvalidArgumentError extends DomainError {
  override name = "InvalidArgumentError";
  /** Every problem found, at least one. */
  readonly violations: readonly FieldViolation[];
  /**
   * One problem (`message`, about `field` if given), or a list of them (see
   * `validate()` in validation.ts, which collects all of a request's violations).
   */
  constructor(problem: string | readonly FieldViolation[], field?: string) {
    const violations = typeof problem === "string" ? [{ field: field ?? "", description: problem }] : problem;
    if (violations.length === 0) throw new Error("an InvalidArgumentError needs at least one violation");
    super(violations.map(describeViolation).join("; "));
    this.violations = violations;
  }
  /** The field of the first violation, e.g. "page_size"; undefined when it names none. */
  get field(): string | undefined {
    return this.violations[0]?.field || undefined;
  }
}

/** The thing asked for does not exist (or the caller may not know that it does). */
export class NotFoundError extends DomainError {
  override name = "NotFoundError";
}

/** The thing to create exists already. */
export class AlreadyExistsError extends DomainError {
  override name = "AlreadyExistsError";
}

/**
 * One precondition a request failed, about one thing. Between services it travels as a
 * `google.rpc.PreconditionFailure` violation (see grpc/status-details.ts), so callers read
 * which thing it was as data, not from the message.
 */
export interface PreconditionViolation {
  /** The kind of precondition, e.g. "STOCK". */
  readonly type: string;
  /** What it is about, e.g. a product id. */
  readonly subject: string;
  /** What failed, for people. */
  readonly description: string;
}

/**
 * The system is not in the state the operation needs, e.g. cancelling a shipped order. It may
 * name the things at fault as `violations`.
 */
export class FailedPreconditionError extends DomainError {
  override name = "FailedPreconditionError";
  constructor(
    message: string,
    readonly violations: readonly PreconditionViolation[] = [],
  ) {
    super(message);
  }
}

/** The caller is known but not allowed to do this. */
export class PermissionDeniedError extends DomainError {
  override name = "PermissionDeniedError";
}

/** The caller did not prove who they are (no, bad or expired credentials). */
export class UnauthenticatedError extends DomainError {
  override name = "UnauthenticatedError";
}

/** A concurrent change won a race; retrying the whole operation may succeed. */
export class AbortedError extends DomainError {
  override name = "AbortedError";
}

/** A limit was hit (rate, quota, size). */
export class ResourceExhaustedError extends DomainError {
  override name = "ResourceExhaustedError";
}

/** What a failed call's status carries besides its code and message, as data. */
export interface StatusDetails {
  violations?: readonly FieldViolation[];
  preconditions?: readonly PreconditionViolation[];
  /**
   * What failed is shared by every replica (Postgres or Redis down): a client must not repeat
   * the call on another replica, which would fail alike and spend the caller's deadline. Sent
   * as the trailer `grpc-retry-pushback-ms: -1`, which gRPC clients' retry policies obey.
   */
  doNotRetry?: boolean;
}

/** A failure carrying a gRPC status: thrown by Bazaar's gRPC client, and what server handlers end with. */
export class RpcError extends Error {
  override name = "RpcError";
  /**
   * The request's field problems, sent and received as the `google.rpc.BadRequest` detail of
   * an INVALID_ARGUMENT; empty for other failures.
   */
  readonly violations: readonly FieldViolation[];
  /**
   * The failed preconditions, sent and received as the `google.rpc.PreconditionFailure`
   * detail of a FAILED_PRECONDITION; empty for other failures.
   */
  readonly preconditions: readonly PreconditionViolation[];
  /** See {@link StatusDetails.doNotRetry}. */
  readonly doNotRetry: boolean;
  constructor(
    readonly code: status,
    message: string,
    details: StatusDetails = {},
  ) {
    super(message);
    this.violations = details.violations ?? [];
    this.preconditions = details.preconditions ?? [];
    this.doNotRetry = details.doNotRetry ?? false;
  }
  /** The status code's name, e.g. "NOT_FOUND". */
  get codeName(): string {
    return status[this.code] ?? String(this.code);
  }
}

const domainCodes: [new (...args: never[]) => DomainError, status][] = [
  [InvalidArgumentError, status.INVALID_ARGUMENT],
  [NotFoundError, status.NOT_FOUND],
  [AlreadyExistsError, status.ALREADY_EXISTS],
  [FailedPreconditionError, status.FAILED_PRECONDITION],
  [PermissionDeniedError, status.PERMISSION_DENIED],
  [UnauthenticatedError, status.UNAUTHENTICATED],
  [AbortedError, status.ABORTED],
  [ResourceExhaustedError, status.RESOURCE_EXHAUSTED],
];

/**
 * The status code of a domain error, or undefined for anything else (which a server must
 * answer with INTERNAL, keeping its details out of the reply).
 */
export function domainErrorCode(err: unknown): status | undefined {
  for (const [type, code] of domainCodes) if (err instanceof type) return code;
  return undefined;
}
