/** Where a {@link CircuitBreaker} stands. */
export type CircuitState = "closed" | "open" | "half-open";

/** Options of a {@link CircuitBreaker}. */
export interface CircuitBreakerOptions {
  /** Consecutive failures that open the circuit; 5 unless given. */
  failureThreshold?: number;
  /**
   * How long an open circuit refuses every call before it lets one probe through; 1 s unless
   * given. Longer than the guarded calls' own time budget, so when the probe goes out nothing
   * sent before the circuit opened is still in flight.
   */
  coolDownMs?: number;
  /** The clock, in milliseconds (tests inject one). */
  now?: () => number;
  /** Called on each change of state, with the failure that caused an opening. */
  onChange?: (state: CircuitState, reason?: string) => void;
}

/**
 * A circuit breaker: it lets calls through while they work (closed); after `failureThreshold`
 * failures in a row it opens and refuses every call for `coolDownMs`, so a dependency that
 * hangs or is down costs callers nothing; then it half-opens and lets exactly one probe
 * through: a success closes it, a failure opens it for another cool-down. Callers ask
 * {@link tryAcquire} before a call and report its outcome with {@link succeeded} or
 * {@link failed}.
 */
export class CircuitBreaker {
  private current: CircuitState = "closed";
  private failures = 0;
  private openedAt = 0;
  private probing = false;
  private readonly failureThreshold: number;
  private readonly coolDownMs: number;
  private readonly now: () => number;
  private readonly onChange: (state: CircuitState, reason?: string) => void;

  constructor(options: CircuitBreakerOptions = {}) {
    this.failureThreshold = options.failureThreshold ?? 5;
    this.coolDownMs = options.coolDownMs ?? 1_000;
    this.now = options.now ?? Date.now;
    this.onChange = options.onChange ?? (() => {});
    if (!(this.failureThreshold >= 1) || !(this.coolDownMs > 0)) {
      throw new Error(`CircuitBreaker: failureThreshold must be >= 1 and coolDownMs > 0 (got ${this.failureThreshold} and ${this.coolDownMs})`);
    }
  }

  /** The state now (an open circuit whose cool-down is over reads as half-open). */
  get state(): CircuitState {
    if (this.current === "open" && this.now() - this.openedAt >= this.coolDownMs) return "half-open";
    return this.current;
  }

  /**
   * Whether a call may go ahead now: always while closed, never while open, and in half-open
   * only the first (the probe) until its outcome is reported.
   */
  tryAcquire(): boolean {
    if (this.current === "closed") return true;
    if (this.current === "open") {
      if (this.now() - this.openedAt < this.coolDownMs) return false;
      this.move("half-open");
      this.probing = false;
    }
    if (this.probing) return false;
    this.probing = true;
    return true;
  }

  /** Reports a call that worked: the failure streak ends, and a probe closes the circuit. */
  succeeded(): void {
    this.failures = 0;
    if (this.current === "half-open") this.move("closed");
  }

  /** Reports a call that failed or timed out: the streak grows, and the threshold or a failed probe opens the circuit. */
  failed(reason: string): void {
    if (this.current === "open") return;
    this.failures++;
    if (this.current === "half-open" || this.failures >= this.failureThreshold) {
      this.openedAt = this.now();
      this.probing = false;
      this.move("open", reason);
    }
  }

  private move(state: CircuitState, reason?: string): void {
    this.current = state;
    this.onChange(state, reason);
  }
}
