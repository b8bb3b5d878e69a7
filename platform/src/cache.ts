import { createClient } from "redis";
import { log } from "./log.ts";
import { cacheRequests } from "./metrics.ts";
import { SpanKind, withSpan } from "./telemetry.ts";

/** A Redis connection whose keys all start with one prefix. */
export interface RedisConnection {
  /** The node-redis client (commands are not traced; prefer the helpers that are). */
  client: ReturnType<typeof createClient>;
  /** Prepended to every key: isolates apps (and test runs) sharing one Redis. */
  keyPrefix: string;
  /** Closes the connection. */
  close(): Promise<void>;
}

/**
 * Connects to Redis. Commands fail at once while the connection is down (no offline queue),
 * so callers that can do without Redis (caches) fall back instead of waiting; the client
 * reconnects by itself.
 */
export async function connectRedis(url: string, keyPrefix: string): Promise<RedisConnection> {
  const client = createClient({
    url,
    disableOfflineQueue: true,
    // Reconnects within about a second of Redis's return (doubling from 100 ms, capped at 1 s,
    // with jitter so replicas do not reconnect in step); a connect gives up after 2 s.
    socket: { connectTimeout: 2_000, reconnectStrategy: (retries) => Math.min(100 * 2 ** retries, 1_000) + Math.floor(Math.random() * 100) },
  });
  let reported = false;
  client.on("error", (err: Error) => {
    if (!reported) log.warn("redis connection error", { err: err.message });
    reported = true;
  });
  client.on("ready", () => (reported = false));
  try {
    await client.connect();
  } catch (err) {
    throw new Error(`cannot connect to Redis at ${url}: ${(err as Error).message}`);
  }
  return {
    client,
    keyPrefix,
    close: async () => {
      if (client.isOpen) await client.close();
    },
  };
}

/** How a cache turns values into strings and back. */
export interface CacheCodec<T> {
  encode(value: T): string;
  decode(text: string): T;
}

/** Options of a {@link CacheAside}. */
export interface CacheAsideOptions<T> {
  /** The cache's name, in keys and metrics, e.g. "product". */
  name: string;
  /** How long an entry lives, in seconds: the bound on staleness if an invalidation is lost. */
  ttlSeconds: number;
  codec: CacheCodec<T>;
}

/**
 * Cache-aside over Redis: read through the cache, load what is missing from the source of
 * truth, write it back with a TTL; invalidate on change. Hits and misses are counted in
 * `bazaar_cache_requests_total`, every Redis round trip is a CLIENT span, and when Redis is
 * unreachable reads go straight to the source (logged and counted as misses), so the cache
 * can fail without taking the service down.
 */
export class CacheAside<T> {
  constructor(
    private readonly redis: RedisConnection,
    private readonly options: CacheAsideOptions<T>,
  ) {}

  private key(id: string): string {
    return `${this.redis.keyPrefix}${this.options.name}:${id}`;
  }

  private redisSpan<R>(command: string, keys: number, fn: () => Promise<R>): Promise<R> {
    return withSpan(
      `${command} ${this.options.name}`,
      { kind: SpanKind.CLIENT, attributes: { "db.system.name": "redis", "db.operation.name": command, "db.operation.batch.size": keys } },
      fn,
    );
  }

  /**
   * The values for `ids`: cached ones from Redis, the rest from `load` (which returns those
   * that exist), then cached. Ids that `load` does not return are absent from the result.
   */
  async getMany(ids: readonly string[], load: (missing: string[]) => Promise<Map<string, T>>): Promise<Map<string, T>> {
    const found = new Map<string, T>();
    if (ids.length === 0) return found;
    let cached: (string | null)[] = [];
    try {
      cached = await this.redisSpan("MGET", ids.length, () => this.redis.client.mGet(ids.map((id) => this.key(id))));
    } catch (err) {
      log.warn("cache read failed; reading from the source", { cache: this.options.name, err: (err as Error).message });
    }
    const missing: string[] = [];
    ids.forEach((id, i) => {
      const text = cached[i];
      if (text == null) missing.push(id);
      else found.set(id, this.options.codec.decode(text));
    });
    if (found.size) cacheRequests.inc({ cache: this.options.name, result: "hit" }, found.size);
    if (missing.length === 0) return found;
    cacheRequests.inc({ cache: this.options.name, result: "miss" }, missing.length);
    const loaded = await load(missing);
    if (loaded.size) {
      try {
        await this.redisSpan("SET", loaded.size, async () => {
          const tx = this.redis.client.multi();
          for (const [id, value] of loaded) tx.set(this.key(id), this.options.codec.encode(value), { EX: this.options.ttlSeconds });
          await tx.exec();
        });
      } catch (err) {
        log.warn("cache write failed", { cache: this.options.name, err: (err as Error).message });
      }
    }
    for (const [id, value] of loaded) found.set(id, value);
    return found;
  }

  /** One value, through the cache; undefined if the source has none. */
  async get(id: string, load: (id: string) => Promise<T | undefined>): Promise<T | undefined> {
    const result = await this.getMany([id], async ([missing]) => {
      const value = missing === undefined ? undefined : await load(missing);
      return new Map(value === undefined ? [] : [[id, value]]);
    });
    return result.get(id);
  }

  /**
   * Drops entries after their source changed. Throws if Redis cannot be reached: a caller
   * that changed data must know the cache may serve the old value until the TTL ends.
   */
  async invalidate(ids: readonly string[]): Promise<void> {
    if (ids.length === 0) return;
    await this.redisSpan("DEL", ids.length, () => this.redis.client.del(ids.map((id) => this.key(id))));
  }
}
