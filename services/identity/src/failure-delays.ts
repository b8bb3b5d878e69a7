import type { RedisConnection } from "@bazaar/platform/cache";
import { log } from "@bazaar/platform/log";

/** How one count of failures slows whoever it counts (a client address, an OAuth client …). */
export interface DelayPolicy {
  /** The sliding window failures are counted in, in milliseconds. */
  windowMs: number;
  /** Failures allowed within the window before each further attempt must wait. */
  freeFailures: number;
  /** The first delay past `freeFailures`; each further failure doubles it. */
  baseDelayMs: number;
  /** The longest delay. */
  maxDelayMs: number;
}

/**
 * Lua: the wait left (ms) on one count of failures, a sorted set of failure timestamps:
 * forget the entries older than the window; past the free failures, the wait until the delay
 * since the last failure, doubling with each failure, has passed; else 0. The login
 * throttle's scripts call it too.
 */
export const growingWaitLua = `
local function growingWait(key, now, window, free, base, max)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  local n = redis.call('ZCARD', key)
  if n >= free then
    local last = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
    local delay = math.min(max, base * 2 ^ (n - free))
    if now < tonumber(last[2]) + delay then return math.max(1, tonumber(last[2]) + delay - now) end
  end
  return 0
end
`;

// An attempt on every count in KEYS, each with its policy in ARGV (four numbers a key, after
// now and the attempt's id): refused with the longest wait when any count waits out its
// delay; otherwise recorded in all. Recording before the secret is checked (and removing the
// record on success) means parallel guesses cannot all slip past the check; refused attempts
// are not recorded.
const attemptScript = `${growingWaitLua}
local now = tonumber(ARGV[1])
local wait = 0
for i, key in ipairs(KEYS) do
  local o = 2 + (i - 1) * 4
  wait = math.max(wait, growingWait(key, now, tonumber(ARGV[o + 1]), tonumber(ARGV[o + 2]), tonumber(ARGV[o + 3]), tonumber(ARGV[o + 4])))
end
if wait > 0 then return wait end
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, now, ARGV[2])
  redis.call('PEXPIRE', key, tonumber(ARGV[2 + (i - 1) * 4 + 1]))
end
return 0
`;

/** One count an attempt is recorded in: its Redis key (under the prefix) and its policy. */
export interface FailureCount {
  key: string;
  policy: DelayPolicy;
}

/** A recorded attempt: {@link FailureDelays.forget} it when it succeeded. */
export interface RecordedAttempt {
  id: string;
  keys: readonly string[];
}

/** What {@link FailureDelays.attempt} answers. */
export type AttemptVerdict = { allowed: true; attempt: RecordedAttempt } | { allowed: false; waitMs: number };

/**
 * Growing delays after failures, kept in Redis so every replica shares them and TTLs clean
 * them up: each attempt is recorded in one or more counts (per client address, per account or
 * client id …) before the secret is checked, and forgotten when it succeeded; past a count's
 * free failures, the next attempt must wait a delay that doubles with every failure. A guess
 * at full speed thus gets a handful of tries and then about one per doubling delay.
 *
 * If Redis cannot be reached, `whenUnavailable` decides: "refuse" (the default) lets the Redis
 * error through, so the caller is answered UNAVAILABLE naming Redis and no guess goes
 * uncounted; "allow" lets the attempt through (logged), for secrets too long to guess where
 * refusing would do more harm than the throttle prevents (see the token endpoint in main.ts).
 */
export class FailureDelays {
  constructor(
    private readonly redis: RedisConnection,
    /** Names the throttle in logs, e.g. "token endpoint". */
    private readonly what: string,
    private readonly whenUnavailable: "refuse" | "allow" = "refuse",
  ) {}

  /** A key under the Redis prefix. */
  key(name: string): string {
    return `${this.redis.keyPrefix}${name}`;
  }

  /** Records an attempt in every count, or refuses it with the wait left when one of them is waiting out its delay. */
  async attempt(counts: readonly FailureCount[]): Promise<AttemptVerdict> {
    const attempt = { id: crypto.randomUUID(), keys: counts.map((c) => c.key) };
    const policies = counts.flatMap(({ policy: p }) => [p.windowMs, p.freeFailures, p.baseDelayMs, p.maxDelayMs]);
    try {
      const waitMs = Number(
        await this.redis.client.eval(attemptScript, { keys: [...attempt.keys], arguments: [Date.now(), attempt.id, ...policies].map(String) }),
      );
      return waitMs > 0 ? { allowed: false, waitMs } : { allowed: true, attempt };
    } catch (err) {
      if (this.whenUnavailable === "refuse") throw err;
      log.warn(`${this.what} throttle unavailable; allowing the attempt`, { err: (err as Error).message });
      return { allowed: true, attempt };
    }
  }

  /** After a successful attempt: it was no failure, and no longer counts. */
  async forget(attempt: RecordedAttempt): Promise<void> {
    await Promise.all(attempt.keys.map((key) => this.redis.client.zRem(key, attempt.id))).catch((err: unknown) => {
      log.warn(`could not clear a ${this.what} attempt`, { err: (err as Error).message });
    });
  }
}

/** A wait in words: seconds under two minutes, minutes above. */
export function waitInWords(ms: number): string {
  const [n, unit] = ms < 120_000 ? [Math.ceil(ms / 1000), "second"] : [Math.ceil(ms / 60_000), "minute"];
  return `${n} ${unit}${n === 1 ? "" : "s"}`;
}
