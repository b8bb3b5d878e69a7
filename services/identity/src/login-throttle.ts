import { createHash } from "node:crypto";
import type { RedisConnection } from "@bazaar/platform/cache";
import { ResourceExhaustedError } from "@bazaar/platform/errors";
import { log } from "@bazaar/platform/log";

/** Options of {@link LoginThrottle}. */
export interface LoginThrottleOptions {
  /** Failed attempts allowed per email within the window. */
  maxFailures: number;
  /** The sliding window, in milliseconds. */
  windowMs: number;
}

// One sorted set of attempt timestamps per email. Atomically: forget attempts older than the
// window; if `limit` remain, refuse and answer how long until the oldest of them leaves the
// window; otherwise record this attempt. Recording before the password is checked (and
// removing the record on success) means parallel guesses cannot all slip past the check.
const attemptScript = `
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local n = redis.call('ZCARD', KEYS[1])
if n >= limit then
  local oldest = redis.call('ZRANGE', KEYS[1], n - limit, n - limit, 'WITHSCORES')
  return math.max(1, tonumber(oldest[2]) + window - now)
end
redis.call('ZADD', KEYS[1], now, ARGV[4])
redis.call('PEXPIRE', KEYS[1], window)
return 0
`;

/**
 * Limits password guessing per account: after `maxFailures` failed logins for one email within
 * the window, further attempts are refused (RESOURCE_EXHAUSTED) until the oldest failure ages
 * out; a successful login clears the count. Unknown emails are counted the same way, so the
 * limit does not reveal which accounts exist.
 *
 * The counts live in Redis: they are short-lived by nature (a TTL removes them), every replica
 * shares them, and a flood of failures does not turn into writes on the accounts database.
 * If Redis cannot be reached the check is skipped (logged): login stays available, and
 * argon2id still makes each guess cost tens of milliseconds.
 */
export class LoginThrottle {
  constructor(
    private readonly redis: RedisConnection,
    private readonly options: LoginThrottleOptions = { maxFailures: 5, windowMs: 15 * 60_000 },
  ) {}

  // The email is hashed: keys should not carry personal data.
  private key(email: string): string {
    return `${this.redis.keyPrefix}login-attempts:${createHash("sha256").update(email).digest("hex")}`;
  }

  /**
   * Records a login attempt for `email`, or refuses it when the limit is reached. Call
   * {@link succeeded} when the password was right; a wrong one leaves the attempt counted.
   */
  async attempt(email: string): Promise<void> {
    let waitMs: number;
    try {
      const reply = await this.redis.client.eval(attemptScript, {
        keys: [this.key(email)],
        arguments: [String(Date.now()), String(this.options.windowMs), String(this.options.maxFailures), crypto.randomUUID()],
      });
      waitMs = Number(reply);
    } catch (err) {
      log.warn("login throttle unavailable; allowing the attempt", { err: (err as Error).message });
      return;
    }
    if (waitMs > 0) {
      const minutes = Math.ceil(waitMs / 60_000);
      throw new ResourceExhaustedError(`too many attempts; try again in ${minutes} minute${minutes === 1 ? "" : "s"}`);
    }
  }

  /** Clears the failures of `email` after a successful login. */
  async succeeded(email: string): Promise<void> {
    await this.redis.client.del(this.key(email)).catch((err: unknown) => {
      log.warn("could not clear the login attempts", { err: (err as Error).message });
    });
  }
}
