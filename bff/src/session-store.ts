import { createHash } from "node:crypto";
// Not Bun.sleep: the web UI's typed client makes its tsconfig, which has no Bun types, check this file too.
import { setTimeout as sleep } from "node:timers/promises";
import { status } from "@grpc/grpc-js";
import { type Timestamp, timestampDate } from "@bufbuild/protobuf/wkt";
import type { RedisConnection } from "@bazaar/platform/cache";
import { RpcError } from "@bazaar/platform/errors";
import { log } from "@bazaar/platform/log";
import { SpanKind, withSpan } from "@bazaar/platform/telemetry";
import type { Tokens, User } from "@bazaar/proto/bazaar/identity/v1/identity_pb";
import { randomToken } from "./cookies.ts";
import { SessionEndedError } from "./errors.ts";
import { sessionRefreshes } from "./metrics.ts";
import { type UserView, userView } from "./shape.ts";
import type { IdentityClient } from "./upstreams/identity.ts";

/** What Redis holds for one browser session. */
export interface SessionRecord {
  user: UserView;
  accessToken: string;
  /** Epoch milliseconds. */
  accessExpiresAt: number;
  /** How long the access token lived when issued, in milliseconds (sets how early to refresh). */
  accessLifetimeMs: number;
  refreshToken: string;
  /** Epoch milliseconds; the session cannot outlive its refresh token. */
  refreshExpiresAt: number;
  /** Epoch milliseconds. */
  createdAt: number;
}

/** A session loaded for one request. */
export interface Session {
  /** The Redis key (derived from the cookie's id, which Redis never sees). */
  readonly key: string;
  record: SessionRecord;
}

/** Options of {@link SessionStore}. */
export interface SessionStoreOptions {
  /** How long a session lives unused; every use extends it (sliding expiry). */
  ttlSeconds: number;
  /**
   * Refresh the access token when less than this is left, in milliseconds (60 s by default),
   * but never earlier than half its lifetime, so short-lived tokens are not refreshed on every
   * request.
   */
  refreshMarginMs?: number;
  /** Deadline of the Refresh call. */
  refreshTimeoutMs?: number;
}

/** Releases a lock only if it is still ours (it may have expired and been taken by another). */
const releaseLockScript = `if redis.call("get", KEYS[1]) == ARGV[1] then return redis.call("del", KEYS[1]) else return 0 end`;

/** Failures a refresh cannot recover from: the refresh token is expired, revoked or reused. */
const fatalRefreshCodes = new Set<status>([status.UNAUTHENTICATED, status.INVALID_ARGUMENT, status.NOT_FOUND, status.PERMISSION_DENIED]);

/** The Redis key of a session id, under the BFF's prefix. The id is hashed: a Redis dump does not hold usable cookies. */
export function sessionRedisKey(keyPrefix: string, id: string): string {
  return `${keyPrefix}bff:session:${createHash("sha256").update(id).digest("base64url")}`;
}

/** A stored session, or undefined for anything unreadable (treated as no session). */
function parseRecord(text: string): SessionRecord | undefined {
  try {
    const record = JSON.parse(text) as SessionRecord;
    return typeof record.accessToken === "string" && typeof record.refreshToken === "string" && record.user ? record : undefined;
  } catch {
    return undefined;
  }
}

function epochMs(t: Timestamp | undefined, fallback: number): number {
  return t ? timestampDate(t).getTime() : fallback;
}

/**
 * Browser sessions in Redis. A session holds the user and their tokens; the cookie holds only
 * a random id. Each load extends the session's life (GETEX), and the access token is
 * refreshed shortly before it expires — once per session at a time: concurrent requests of
 * one process share one refresh (a map of promises) and replicas take a short Redis lock, since
 * identity revokes a refresh token's whole family when it is presented twice.
 */
export class SessionStore {
  private readonly refreshing = new Map<string, Promise<SessionRecord>>();
  private readonly refreshMarginMs: number;
  private readonly refreshTimeoutMs: number;
  private readonly lockTtlMs: number;

  constructor(
    private readonly redis: RedisConnection | undefined,
    private readonly identity: IdentityClient,
    private readonly options: SessionStoreOptions,
  ) {
    this.refreshMarginMs = options.refreshMarginMs ?? 60_000;
    this.refreshTimeoutMs = options.refreshTimeoutMs ?? 3_000;
    // Long enough to cover the Refresh call and the write after it.
    this.lockTtlMs = this.refreshTimeoutMs + 2_000;
  }

  /** Seconds a session lives unused. */
  get ttlSeconds(): number {
    return this.options.ttlSeconds;
  }

  private client(): RedisConnection {
    if (!this.redis) throw new RpcError(status.UNAVAILABLE, "the BFF has no session store (Redis) configured");
    return this.redis;
  }

  /** A Redis round trip in a CLIENT span; a Redis failure is UNAVAILABLE (a 503), not a 500. */
  private async call<T>(command: string, fn: (redis: RedisConnection) => Promise<T>): Promise<T> {
    const redis = this.client();
    try {
      return await withSpan(`${command} session`, { kind: SpanKind.CLIENT, attributes: { "db.system.name": "redis", "db.operation.name": command } }, () =>
        fn(redis),
      );
    } catch (err) {
      if (err instanceof RpcError) throw err;
      throw new RpcError(status.UNAVAILABLE, `the session store is not answering: ${(err as Error).message}`);
    }
  }

  private key(id: string): string {
    return sessionRedisKey(this.client().keyPrefix, id);
  }

  /** Starts a session for a user who just signed in or up; returns the id for the cookie. */
  async create(user: User, tokens: Tokens): Promise<{ id: string; session: Session }> {
    const now = Date.now();
    const accessExpiresAt = epochMs(tokens.accessTokenExpireTime, now + 60_000);
    const record: SessionRecord = {
      user: userView(user),
      accessToken: tokens.accessToken,
      accessExpiresAt,
      accessLifetimeMs: Math.max(1_000, accessExpiresAt - now),
      refreshToken: tokens.refreshToken,
      refreshExpiresAt: epochMs(tokens.refreshTokenExpireTime, now + this.options.ttlSeconds * 1000),
      createdAt: now,
    };
    const id = randomToken();
    const key = this.key(id);
    await this.call("SET", (r) => r.client.set(key, JSON.stringify(record), { expiration: { type: "EX", value: this.initialTtl(record, now) } }));
    return { id, session: { key, record } };
  }

  private initialTtl(record: SessionRecord, now: number): number {
    return Math.max(1, Math.min(this.options.ttlSeconds, Math.ceil((record.refreshExpiresAt - now) / 1000)));
  }

  /** The session with this id, its life extended; undefined if there is none (or it ran out). */
  async load(id: string): Promise<Session | undefined> {
    const key = this.key(id);
    const text = await this.call("GETEX", (r) => r.client.getEx(key, { type: "EX", value: this.options.ttlSeconds }));
    const record = text ? parseRecord(text) : undefined;
    if (!record) return undefined;
    if (record.refreshExpiresAt <= Date.now()) {
      await this.call("DEL", (r) => r.client.del(key));
      return undefined;
    }
    return { key, record };
  }

  /** Whether the session still exists (a stream checks now and then that nobody signed out). */
  async exists(session: Session): Promise<boolean> {
    return (await this.call("EXISTS", (r) => r.client.exists(session.key))) === 1;
  }

  /** Ends a session: deleted here, and its refresh-token family revoked at identity (best effort). */
  async end(session: Session): Promise<void> {
    await this.call("DEL", (r) => r.client.del(session.key));
    await this.identity.logout({ refreshToken: session.record.refreshToken }).catch((err: unknown) => {
      // The session is gone from Redis either way; the refresh token dies at its expiry.
      log.warn("identity Logout failed; the session is ended here regardless", { err: (err as Error).message });
    });
  }

  private needsRefresh(record: SessionRecord, now = Date.now()): boolean {
    const margin = Math.min(this.refreshMarginMs, record.accessLifetimeMs / 2);
    return record.accessExpiresAt - now < margin;
  }

  /**
   * A valid access token for the session, refreshed first if it expires soon. Throws
   * {@link SessionEndedError} if identity refuses the refresh token (the session is deleted).
   */
  async accessToken(session: Session): Promise<string> {
    if (!this.needsRefresh(session.record)) return session.record.accessToken;
    let pending = this.refreshing.get(session.key);
    if (!pending) {
      pending = this.refreshOnce(session.key).finally(() => this.refreshing.delete(session.key));
      this.refreshing.set(session.key, pending);
    }
    session.record = await pending;
    return session.record.accessToken;
  }

  private async read(key: string): Promise<SessionRecord> {
    const text = await this.call("GET", (r) => r.client.get(key));
    const record = text ? parseRecord(text) : undefined;
    if (!record) throw new SessionEndedError();
    return record;
  }

  /** One refresh across replicas: whoever holds the lock refreshes; the others wait and re-read. */
  private async refreshOnce(key: string): Promise<SessionRecord> {
    const lockKey = `${key}:refresh-lock`;
    const giveUpAt = Date.now() + this.lockTtlMs + 1_000;
    for (;;) {
      const current = await this.read(key);
      if (!this.needsRefresh(current)) return current;
      const owner = randomToken();
      const locked = await this.call("SET", (r) => r.client.set(lockKey, owner, { condition: "NX", expiration: { type: "PX", value: this.lockTtlMs } }));
      if (locked) {
        try {
          // Re-read under the lock: another replica may have refreshed a moment ago.
          const fresh = await this.read(key);
          if (!this.needsRefresh(fresh)) return fresh;
          return await this.refresh(key, fresh);
        } finally {
          await this.call("EVAL", (r) => r.client.eval(releaseLockScript, { keys: [lockKey], arguments: [owner] })).catch(() => {});
        }
      }
      if (Date.now() > giveUpAt) throw new RpcError(status.UNAVAILABLE, "timed out waiting for another replica to refresh the session's access token");
      await sleep(50);
    }
  }

  private async refresh(key: string, record: SessionRecord): Promise<SessionRecord> {
    let tokens: Tokens | undefined;
    try {
      ({ tokens } = await this.identity.refresh({ refreshToken: record.refreshToken }, { timeoutMs: this.refreshTimeoutMs }));
    } catch (err) {
      const refused = err instanceof RpcError && fatalRefreshCodes.has(err.code);
      sessionRefreshes.inc({ outcome: refused ? "ended" : "failed" });
      if (refused) {
        log.info("session ended: identity refused its refresh token", { reason: (err as Error).message, userId: record.user.id });
        await this.call("DEL", (r) => r.client.del(key)).catch(() => {});
        throw new SessionEndedError();
      }
      // Identity is down or slow: the current token serves while it is still valid.
      if (record.accessExpiresAt - Date.now() > 5_000) {
        log.warn("access token refresh failed; using the current token until it expires", { err: (err as Error).message });
        return record;
      }
      throw err;
    }
    if (!tokens) throw new RpcError(status.INTERNAL, "identity answered Refresh without tokens");
    sessionRefreshes.inc({ outcome: "refreshed" });
    const now = Date.now();
    const accessExpiresAt = epochMs(tokens.accessTokenExpireTime, now + 60_000);
    const next: SessionRecord = {
      ...record,
      accessToken: tokens.accessToken,
      accessExpiresAt,
      accessLifetimeMs: Math.max(1_000, accessExpiresAt - now),
      refreshToken: tokens.refreshToken,
      refreshExpiresAt: epochMs(tokens.refreshTokenExpireTime, record.refreshExpiresAt),
    };
    // XX: a session deleted meanwhile (signed out) stays deleted. KEEPTTL: the sliding expiry is the loads' business.
    const written = await this.call("SET", (r) => r.client.set(key, JSON.stringify(next), { condition: "XX", expiration: "KEEPTTL" }));
    if (!written) throw new SessionEndedError();
    return next;
  }
}
