import { createHash } from "node:crypto";
import type { RedisConnection } from "@bazaar/platform/cache";
import { ResourceExhaustedError } from "@bazaar/platform/errors";
import { log } from "@bazaar/platform/log";
import { type DelayPolicy, FailureDelays, growingWaitLua, waitInWords } from "./failure-delays.ts";

/** Options of {@link LoginThrottle}. */
export interface LoginThrottleOptions {
  /** Failed attempts allowed for one email from one client address within `windowMs`; then refused. */
  maxFailures: number;
  /** The sliding window of the per-(address, email) and per-email counts, in milliseconds. */
  windowMs: number;
  /** Failed attempts (on any emails) one client address may make within `addressWindowMs` before it is slowed. */
  addressFreeFailures: number;
  /** The sliding window of the per-address count, in milliseconds. */
  addressWindowMs: number;
  /** The first delay past `addressFreeFailures`; each further failure doubles it. */
  addressBaseDelayMs: number;
  /** The longest per-address delay. */
  addressMaxDelayMs: number;
  /** Failed attempts on one email from all addresses within `windowMs` past which every attempt is slowed. */
  accountCeiling: number;
  /** How long an attempt on an account past its ceiling waits before the password is checked. */
  accountDelayMs: number;
}

/** The defaults: OWASP's "limit per client and account, slow rather than lock". */
export const defaultLoginThrottle: LoginThrottleOptions = {
  maxFailures: 5,
  windowMs: 15 * 60_000,
  addressFreeFailures: 50,
  addressWindowMs: 60 * 60_000,
  addressBaseDelayMs: 1_000,
  addressMaxDelayMs: 15 * 60_000,
  accountCeiling: 20,
  accountDelayMs: 1_000,
};

// Three sorted sets of failure timestamps: KEYS[1] per (address, email), KEYS[2] per address,
// KEYS[3] per email. Atomically: forget entries older than their window; refuse when the pair
// has `maxFailures` (answer: until the oldest leaves the window) or when the address is past
// its free failures and the growing delay since its last failure has not passed (see
// failure-delays.ts, which also records sign-up probes on the per-address set); otherwise
// record this attempt in all three and answer whether the email is past its ceiling (slow it).
// Recording before the password is checked (and removing the record on success) means
// parallel guesses cannot all slip past the check. Refused attempts are not recorded.
const attemptScript = `${growingWaitLua}
local now = tonumber(ARGV[1])
local window, limit = tonumber(ARGV[3]), tonumber(ARGV[4])
local aWindow, aFree, aBase, aMax = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local ceiling = tonumber(ARGV[9])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - window)
local n = redis.call('ZCARD', KEYS[1])
if n >= limit then
  local oldest = redis.call('ZRANGE', KEYS[1], n - limit, n - limit, 'WITHSCORES')
  return {1, math.max(1, tonumber(oldest[2]) + window - now)}
end
local wait = growingWait(KEYS[2], now, aWindow, aFree, aBase, aMax)
if wait > 0 then return {2, wait} end
local slow = redis.call('ZCARD', KEYS[3]) >= ceiling and 1 or 0
redis.call('ZADD', KEYS[1], now, ARGV[2])
redis.call('PEXPIRE', KEYS[1], window)
redis.call('ZADD', KEYS[2], now, ARGV[2])
redis.call('PEXPIRE', KEYS[2], aWindow)
redis.call('ZADD', KEYS[3], now, ARGV[2])
redis.call('PEXPIRE', KEYS[3], window)
return {0, slow}
`;

/** The refusal of an address that is waiting out its growing delay. */
const addressRefusal = (waitMs: number) => new ResourceExhaustedError(`too many failed sign-ins from your address; try again in ${waitInWords(waitMs)}`);

/** A recorded attempt: pass it to {@link LoginThrottle.succeeded} when the password was right. */
export interface LoginAttempt {
  email: string;
  address: string;
  id: string;
}

/**
 * Limits password guessing without letting anyone lock an owner out of their account
 * (OWASP's authentication cheat sheet):
 * - per (client address, email): after `maxFailures` failures within the window, that address
 *   is refused for that email (RESOURCE_EXHAUSTED) until the oldest failure ages out. Other
 *   addresses, the owner's among them, are not affected;
 * - per client address: past `addressFreeFailures` failures on any emails, each further
 *   attempt must wait a delay that doubles with every failure (spraying many emails);
 * - per email: past `accountCeiling` failures from all addresses (a distributed guess), every
 *   attempt on it waits `accountDelayMs` before the password is checked: slowed, never refused.
 * A successful login clears its address's failures for that email and does not count.
 * Unknown emails are counted the same way, so the limits do not reveal which accounts exist.
 *
 * The client address is the one identity was given by a trusted caller (see rpc.ts), else the
 * connection's peer. The counts live in Redis: they are short-lived by nature (TTLs remove
 * them), every replica shares them, and a flood of failures does not turn into writes on the
 * accounts database. If Redis cannot be reached the attempt is refused, UNAVAILABLE naming
 * Redis (the chassis maps its error): a Redis outage must not open a window of unthrottled
 * password guessing. (identity reports NOT_SERVING meanwhile: Redis is a required dependency.)
 */
export class LoginThrottle {
  private readonly options: LoginThrottleOptions;
  private readonly probes: FailureDelays;

  constructor(
    private readonly redis: RedisConnection,
    options: Partial<LoginThrottleOptions> = {},
  ) {
    this.options = { ...defaultLoginThrottle, ...options };
    this.probes = new FailureDelays(redis, "sign-up");
  }

  /** The per-address count's policy, shared by login attempts and sign-up probes. */
  private get addressPolicy(): DelayPolicy {
    const o = this.options;
    return { windowMs: o.addressWindowMs, freeFailures: o.addressFreeFailures, baseDelayMs: o.addressBaseDelayMs, maxDelayMs: o.addressMaxDelayMs };
  }

  // Emails and addresses are hashed: keys should not carry personal data. The per-email key
  // keeps the name it had when it was the only one.
  private keys(email: string, address: string): string[] {
    const hash = (s: string) => createHash("sha256").update(s).digest("hex");
    const prefix = `${this.redis.keyPrefix}login-attempts:`;
    return [`${prefix}from:${hash(`${address}\n${email}`)}`, `${prefix}address:${hash(address)}`, `${prefix}${hash(email)}`];
  }

  /**
   * Records a login attempt for `email` from `address`, or refuses it (RESOURCE_EXHAUSTED);
   * waits first when the account is past its ceiling. Call {@link succeeded} with the result
   * when the password was right; a wrong one leaves the attempt counted.
   */
  async attempt(email: string, address: string): Promise<LoginAttempt> {
    const o = this.options;
    const attempt = { email, address, id: crypto.randomUUID() };
    const args = [Date.now(), attempt.id, o.windowMs, o.maxFailures, o.addressWindowMs, o.addressFreeFailures, o.addressBaseDelayMs];
    const reply = (await this.redis.client.eval(attemptScript, {
      keys: this.keys(email, address),
      arguments: [...args, o.addressMaxDelayMs, o.accountCeiling].map(String),
    })) as [number, number];
    const [refused, value] = reply.map(Number) as [number, number];
    if (refused === 1) throw new ResourceExhaustedError(`too many attempts; try again in ${waitInWords(value)}`);
    if (refused === 2) throw addressRefusal(value);
    if (value === 1) await Bun.sleep(o.accountDelayMs);
    return attempt;
  }

  /**
   * Records a sign-up from `address` as a probe, or refuses it (RESOURCE_EXHAUSTED) while the
   * address waits out its delay. A sign-up that finds its email taken has learnt that an
   * account exists: it stays counted with the address's failed sign-ins, so one client cannot
   * sweep a list of emails through sign-up either. Call {@link clearSignUpProbe} when the email
   * did not find its email taken.
   */
  async signUpProbe(address: string): Promise<LoginAttempt> {
    const verdict = await this.probes.attempt([{ key: this.keys("", address)[1] as string, policy: this.addressPolicy }]);
    if (!verdict.allowed) throw addressRefusal(verdict.waitMs);
    return { email: "", address, id: verdict.attempt.id };
  }

  /** After a sign-up that did not find its email taken: it taught nothing, and does not count. */
  async clearSignUpProbe(probe: LoginAttempt): Promise<void> {
    await this.probes.forget({ id: probe.id, keys: [this.keys("", probe.address)[1] as string] });
  }

  /** After a successful login: clears the address's failures for the email; the attempt itself is not a failure. */
  async succeeded(attempt: LoginAttempt): Promise<void> {
    const [pair, address, account] = this.keys(attempt.email, attempt.address) as [string, string, string];
    await Promise.all([this.redis.client.del(pair), this.redis.client.zRem(address, attempt.id), this.redis.client.zRem(account, attempt.id)]).catch(
      (err: unknown) => {
        log.warn("could not clear the login attempts", { err: (err as Error).message });
      },
    );
  }
}
