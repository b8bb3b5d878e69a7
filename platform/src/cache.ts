import { AbortError, createClient } from "redis";
import { type CallBudget, CallEndedError, currentCallBudget } from "./call-budget.ts";
import { CircuitBreaker, type CircuitBreakerOptions } from "./circuit-breaker.ts";
import { log, throttledWarning } from "./log.ts";
import { markRedisOutage } from "./outage.ts";
import { cacheCircuitOpen, cacheCommandFailures, cacheRequests } from "./metrics.ts";
import { SpanKind, withSpan } from "./telemetry.ts";
import { withinTime } from "./time-limit.ts";

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
 * Connects to Redis. Commands fail at once while the client knows the connection is down (no
 * offline queue); a Redis that hangs, or a socket that died without a word, makes them wait.
 * A command made on behalf of a gRPC call waits no longer than the call's budget
 * (call-budget.ts): when the deadline passes or the caller cancels, it is abandoned with a
 * {@link CallEndedError} (see {@link boundByCallBudget}). A command outside any call (a
 * consumer, a sweeper, a readiness check) waits as node-redis lets it, which is why
 * {@link CacheAside} also gives every command a time budget of its own. The client
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
  boundByCallBudget(client);
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

type RedisClient = ReturnType<typeof createClient>;

/**
 * Makes every command of `client` issued inside a gRPC call end when the call does. node-redis
 * takes an abort signal per command (the `abortSignal` command option, what `withAbortSignal`
 * sets), so the call's signal is handed to every command: one still queued when the call ends
 * is taken out of the queue and never sent. But node-redis drops the signal once the command
 * is written, and a written command cannot be taken back (Redis answers in order), so the
 * caller's promise is also settled at the abort: the handler stops waiting at once and the
 * late reply, when a hung Redis gets to it, is read and dropped. Transactions (MULTI/EXEC),
 * which node-redis queues without command options, are settled at the abort in the same way.
 *
 * node-redis has no hook for per-command options decided at call time, so this replaces two
 * methods on the client's own instance: `sendCommand` (public), which every command and script
 * goes through, and `multi`. What `createClient` returns is a view over that instance
 * (`Object.create`, its private `_self`), as are the views `withAbortSignal` and the like
 * return, and commands call `_self.sendCommand`: the methods are replaced there, so every view
 * sees them. Every service gets this from {@link connectRedis} without wrapping its calls.
 */
function boundByCallBudget(view: RedisClient): void {
  type Send = (this: RedisClient, args: readonly unknown[], options?: { abortSignal?: AbortSignal }) => Promise<unknown>;
  const client = (view as unknown as { _self?: RedisClient })._self ?? view;
  const send = client.sendCommand as unknown as Send;
  // A command whose connection was reset fails with Node's socket error: say it is Redis's.
  const marked = (reply: Promise<unknown>) =>
    reply.catch((err: unknown) => {
      markRedisOutage(err);
      throw err;
    });
  const bounded: Send = function (args, options) {
    const budget = currentCallBudget();
    if (!budget) return marked(send.call(this, args, options));
    const abortSignal = options?.abortSignal ? AbortSignal.any([options.abortSignal, budget.signal]) : budget.signal;
    return endingWithCall(budget, `Redis ${String(args[0]).toUpperCase()}`, marked(send.call(this, args, { ...options, abortSignal })));
  };
  client.sendCommand = bounded as unknown as RedisClient["sendCommand"];
  const multi = client.multi;
  const boundedMulti = function (this: RedisClient) {
    const transaction = multi.call(this);
    const { exec, execAsPipeline } = transaction;
    transaction.exec = ((...args: Parameters<typeof exec>) => {
      const budget = currentCallBudget();
      const reply = marked(exec.apply(transaction, args)) as ReturnType<typeof exec>;
      return budget ? endingWithCall(budget, "Redis MULTI", reply) : reply;
    }) as typeof exec;
    transaction.execAsPipeline = (() => {
      const budget = currentCallBudget();
      const reply = marked(execAsPipeline.apply(transaction)) as ReturnType<typeof execAsPipeline>;
      return budget ? endingWithCall(budget, "Redis pipeline", reply) : reply;
    }) as typeof execAsPipeline;
    return transaction;
  };
  client.multi = boundedMulti as typeof multi;
  client.MULTI = boundedMulti as typeof multi;
}

/** `reply`, or a {@link CallEndedError} as soon as `budget`'s signal aborts. */
function endingWithCall<R>(budget: CallBudget, what: string, reply: Promise<R>): Promise<R> {
  const { signal } = budget;
  // The late reply (or failure) of an abandoned command is nobody's business.
  reply.catch(() => {});
  if (signal.aborted) return Promise.reject(new CallEndedError(budget, what));
  return new Promise<R>((resolve, reject) => {
    const abandon = () => reject(new CallEndedError(budget, what));
    signal.addEventListener("abort", abandon, { once: true });
    reply
      .then(resolve, (err: unknown) => reject(err instanceof AbortError && signal.aborted ? new CallEndedError(budget, what) : err))
      .finally(() => signal.removeEventListener("abort", abandon));
  });
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
  /**
   * How long one Redis command may take, in ms; 100 unless given. A read that has not answered
   * by then is a miss served from the source; a write or invalidation is given up (counted,
   * logged). Either counts as a failure towards opening the circuit.
   */
  commandTimeoutMs?: number;
  /** The circuit breaker's settings: 5 failures in a row open it for 1 s unless given. */
  breaker?: Omit<CircuitBreakerOptions, "onChange">;
}

type Operation = "read" | "write" | "invalidate";

/** What came of one cache command: its value, or why there is none. */
type Outcome<R> = { ok: true; value: R } | { ok: false; reason: "timeout" | "error" | "bypassed" };

class CommandTimeoutError extends Error {
  constructor(ms: number) {
    super(`no answer from Redis within ${ms} ms`);
    this.name = "CommandTimeoutError";
  }
}

/**
 * Cache-aside over Redis: read through the cache, load what is missing from the source of
 * truth, write it back with a TTL; invalidate on change. Hits and misses are counted in
 * `bazaar_cache_requests_total` and every Redis round trip is a CLIENT span.
 *
 * The cache can fail without slowing the service down: every command has a time budget
 * (`commandTimeoutMs`), a read that fails or runs out of it goes to the source, and a write or
 * invalidation that does is counted in `bazaar_cache_command_failures_total` and logged (at
 * most a line per 10 s). After a run of failures a circuit breaker opens
 * (`bazaar_cache_circuit_open` = 1) and the cache is bypassed without asking Redis at all
 * (look-ups counted as result="bypassed") until, after a cool-down, one probe command
 * succeeds. The breaker is driven by the cache's own traffic: it closes on the first request
 * after Redis is back and the cool-down is over.
 */
export class CacheAside<T> {
  private readonly breaker: CircuitBreaker;
  private readonly timeoutMs: number;
  private readonly warnings: Record<Operation, ReturnType<typeof throttledWarning>>;
  private openedAt = 0;

  constructor(
    private readonly redis: RedisConnection,
    private readonly options: CacheAsideOptions<T>,
  ) {
    const cache = options.name;
    this.timeoutMs = options.commandTimeoutMs ?? 100;
    const coolDownMs = options.breaker?.coolDownMs ?? 1_000;
    this.breaker = new CircuitBreaker({
      ...options.breaker,
      coolDownMs,
      onChange: (state, reason) => {
        if (state === "open") {
          // A failed probe opens the circuit again: that is said once, when it first opened.
          if (this.openedAt === 0) {
            this.openedAt = Date.now();
            log.warn("cache circuit opened: bypassing Redis, reading from the source", {
              cache,
              failures_in_a_row: options.breaker?.failureThreshold ?? 5,
              last_failure: reason,
              probe_every_ms: coolDownMs,
            });
          }
          cacheCircuitOpen.set({ cache }, 1);
        } else if (state === "closed") {
          log.info("cache circuit closed: using Redis again", { cache, open_ms: Date.now() - this.openedAt });
          this.openedAt = 0;
          cacheCircuitOpen.set({ cache }, 0);
        }
      },
    });
    cacheCircuitOpen.set({ cache }, 0);
    this.warnings = {
      read: throttledWarning("cache read failed; reading from the source"),
      write: throttledWarning("cache write failed; the next read loads from the source again"),
      invalidate: throttledWarning("cache invalidation failed; the entry may be stale until its TTL ends"),
    };
  }

  private key(id: string): string {
    return `${this.redis.keyPrefix}${this.options.name}:${id}`;
  }

  /** Runs one Redis command through the breaker, within the time budget, in a CLIENT span. */
  private async command<R>(operation: Operation, command: string, keys: number, fn: () => Promise<R>): Promise<Outcome<R>> {
    const cache = this.options.name;
    if (!this.breaker.tryAcquire()) {
      cacheCommandFailures.inc({ cache, operation, reason: "bypassed" });
      return { ok: false, reason: "bypassed" };
    }
    try {
      const value = await withSpan(
        `${command} ${cache}`,
        { kind: SpanKind.CLIENT, attributes: { "db.system.name": "redis", "db.operation.name": command, "db.operation.batch.size": keys } },
        // node-redis has sent the command by then: a late answer is ignored.
        () => withinTime(fn(), this.timeoutMs, () => new CommandTimeoutError(this.timeoutMs)),
      );
      this.breaker.succeeded();
      return { ok: true, value };
    } catch (err) {
      const reason = err instanceof CommandTimeoutError ? "timeout" : "error";
      const message = (err as Error).message;
      this.breaker.failed(`${command}: ${message}`);
      cacheCommandFailures.inc({ cache, operation, reason });
      this.warnings[operation]({ cache, err: message });
      return { ok: false, reason };
    }
  }

  /**
   * The values for `ids`: cached ones from Redis, the rest from `load` (which returns those
   * that exist), then cached. Ids that `load` does not return are absent from the result.
   */
  async getMany(ids: readonly string[], load: (missing: string[]) => Promise<Map<string, T>>): Promise<Map<string, T>> {
    const found = new Map<string, T>();
    if (ids.length === 0) return found;
    const cache = this.options.name;
    const read = await this.command("read", "MGET", ids.length, () => this.redis.client.mGet(ids.map((id) => this.key(id))));
    const cached = read.ok ? read.value : [];
    const missing: string[] = [];
    ids.forEach((id, i) => {
      const text = cached[i];
      if (text == null) missing.push(id);
      else found.set(id, this.options.codec.decode(text));
    });
    if (found.size) cacheRequests.inc({ cache, result: "hit" }, found.size);
    if (missing.length === 0) return found;
    cacheRequests.inc({ cache, result: !read.ok && read.reason === "bypassed" ? "bypassed" : "miss" }, missing.length);
    const loaded = await load(missing);
    // After a failed read Redis is not asked again in this request: that would spend a second
    // time budget on a server that just failed.
    if (loaded.size && read.ok) {
      await this.command("write", "SET", loaded.size, async () => {
        const tx = this.redis.client.multi();
        for (const [id, value] of loaded) tx.set(this.key(id), this.options.codec.encode(value), { EX: this.options.ttlSeconds });
        await tx.exec();
      });
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
   * Drops entries after their source changed. It does not throw: the change is made, and
   * failing its caller would not remove the entry. An invalidation that fails, runs out of
   * time or is skipped while the circuit is open is counted and logged, and leaves the old
   * entry until its TTL ends: every entry is written with `EX ttlSeconds`, so `ttlSeconds`
   * bounds how long a lost invalidation can serve stale data, whatever Redis did. (A DEL that
   * timed out may still run later, which only drops more.)
   */
  async invalidate(ids: readonly string[]): Promise<void> {
    if (ids.length === 0) return;
    await this.command("invalidate", "DEL", ids.length, () => this.redis.client.del(ids.map((id) => this.key(id))));
  }
}
