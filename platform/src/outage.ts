/**
 * Telling an outage from a bug. A query that fails because Postgres cannot be reached, or a
 * Redis command on a lost connection, is not the caller's fault nor the code's: the chassis
 * answers it UNAVAILABLE (gRPC) or 503 (HTTP) with what is down, instead of INTERNAL / 500,
 * so clients retry and operators look at the right server. Mapped once, here; the gRPC error
 * interceptor and the BFF's error handler ask {@link unavailableDependency}.
 */

/** An infrastructure server a process depends on. */
export type Dependency = "Postgres" | "Redis";

const dependencyOf = Symbol("bazaar.dependency");

/**
 * Errors of postgres.js and of Node's sockets that mean the server could not be reached or
 * the connection was lost (postgres.js's own codes, then Node's system errors).
 */
const connectionCodes = new Set([
  "CONNECTION_CLOSED",
  "CONNECTION_ENDED",
  "CONNECTION_DESTROYED",
  "CONNECT_TIMEOUT",
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EPIPE",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
]);

/**
 * SQLSTATEs that mean the server is going away or not taking work: connection exceptions
 * (class 08), shutting down or starting up (57P01–57P03), too many connections (53300).
 */
function unavailableSqlState(code: string): boolean {
  return code.startsWith("08") || code === "57P01" || code === "57P02" || code === "57P03" || code === "53300";
}

/** Marks `err` as `dependency`'s outage when its code is one `unavailable` accepts. */
function markOutage(err: unknown, dependency: Dependency, unavailable: (code: string) => boolean): void {
  if (typeof err !== "object" || err === null) return;
  const code = (err as { code?: unknown }).code;
  if (typeof code === "string" && unavailable(code)) Object.defineProperty(err, dependencyOf, { value: dependency, enumerable: false });
}

/**
 * Marks `err` as Postgres's if it says the server is unreachable. The database layer calls it
 * on every failed query (see db.ts), because a bare ECONNREFUSED does not say whose it was.
 */
export function markPostgresOutage(err: unknown): void {
  markOutage(err, "Postgres", (code) => connectionCodes.has(code) || unavailableSqlState(code));
}

/**
 * Marks `err` as Redis's if it is a socket error of a lost connection. node-redis rejects a
 * command in flight when its connection is reset with Node's own error (`read ECONNRESET`),
 * not one of its classes; connectRedis (cache.ts) calls this on every failed command.
 */
export function markRedisOutage(err: unknown): void {
  markOutage(err, "Redis", (code) => connectionCodes.has(code));
}

/**
 * Redis's error replies that mean the server is up but not taking this work now, whatever the
 * command: still loading its data after a restart (LOADING, while it replays a large append-only
 * file), out of memory under `noeviction` (OOM), unable to persist (MISCONF), busy in a script
 * (BUSY), a replica that lost its primary or is read-only (MASTERDOWN, READONLY), a cluster
 * resharding (TRYAGAIN, CLUSTERDOWN). An operator must look at Redis; the caller may retry.
 */
const redisUnavailableReplies = /^(LOADING|OOM|MISCONF|BUSY|MASTERDOWN|READONLY|TRYAGAIN|CLUSTERDOWN)\b/;

/**
 * node-redis's errors for a connection that is down, closed or timed out. Told by class name,
 * not `instanceof`, so that this module (which every service loads) does not import node-redis:
 * it costs a process about 13 MB, and most services keep nothing in Redis.
 */
const redisConnectionErrors = new Set([
  "ClientOfflineError",
  "ClientClosedError",
  "SocketClosedUnexpectedlyError",
  "ConnectionTimeoutError",
  "SocketTimeoutError",
]);
/** node-redis's classes of an error reply from the server (`-ERR …`). */
const redisErrorReplies = new Set(["ErrorReply", "SimpleError", "BlobError"]);

function isRedisUnavailable(err: object): boolean {
  const kind = err.constructor?.name ?? "";
  return redisConnectionErrors.has(kind) || (redisErrorReplies.has(kind) && redisUnavailableReplies.test((err as Error).message ?? ""));
}

/**
 * The dependency whose outage `err` is (looking through `cause`s, as drizzle wraps driver
 * errors), or undefined for any other error.
 */
export function unavailableDependency(err: unknown): Dependency | undefined {
  for (let e: unknown = err, depth = 0; e && typeof e === "object" && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const marked = (e as { [dependencyOf]?: Dependency })[dependencyOf];
    if (marked) return marked;
    if (isRedisUnavailable(e)) return "Redis";
  }
  return undefined;
}

/** What a caller is told when `dependency` is down: what is down, and that a retry may work. */
export function outageMessage(dependency: Dependency): string {
  const what = dependency === "Postgres" ? "the service's database (Postgres)" : "Redis";
  return `${what} cannot be reached right now; try again shortly`;
}
