/** How a delay grows from one attempt to the next. */
export interface Backoff {
  /** The delay after the first attempt, in ms. */
  initialDelayMs: number;
  /** The delay stops doubling here, in ms. */
  maxDelayMs: number;
  /** Each delay is scaled by a random factor in [1 - jitter, 1 + jitter], e.g. 0.2. */
  jitter: number;
}

/**
 * The delay after attempt `attempt` (1-based), unrounded: doubling from the initial delay,
 * capped, then scaled by the jitter (`random` in [0, 1) picks where). Callers round and clamp
 * it as they need. The dev runner's restarts, the consumers' delayed redeliveries and the
 * database pools' reconnects use it.
 */
export function backoffDelayMs(backoff: Backoff, attempt: number, random: number): number {
  const nominal = Math.min(backoff.maxDelayMs, backoff.initialDelayMs * 2 ** (attempt - 1));
  return nominal * (1 - backoff.jitter + 2 * backoff.jitter * random);
}
