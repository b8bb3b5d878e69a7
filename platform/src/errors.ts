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

/** The request is malformed: a field is missing, out of range or badly formatted. */
export class InvalidArgumentError extends DomainError {
  override name = "InvalidArgumentError";
  /** The request field at fault, e.g. "page_size". */
  readonly field: string | undefined;
  constructor(message: string, field?: string) {
    super(field ? `${field}: ${message}` : message);
    this.field = field;
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

/** The system is not in the state the operation needs, e.g. cancelling a shipped order. */
export class FailedPreconditionError extends DomainError {
  override name = "FailedPreconditionError";
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

/** A failure carrying a gRPC status: thrown by Bazaar's gRPC client, and what server handlers end with. */
export class RpcError extends Error {
  override name = "RpcError";
  constructor(
    readonly code: status,
    message: string,
  ) {
    super(message);
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
