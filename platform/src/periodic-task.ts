import { log } from "./log.ts";

/**
 * A background job a service runs at start and then every `intervalMs` (sweeps, purges): one
 * run at a time — asking for a run while one is in progress joins it — a failed run is logged
 * and the next one retries, and `stop()` ends the timer and waits for a run in progress.
 * Replicas each run their own; the job itself must be safe to run concurrently (SKIP LOCKED).
 */
export class PeriodicTask {
  private timer: ReturnType<typeof setInterval> | undefined;
  private running: Promise<number> | undefined;
  private isStopped = false;

  /**
   * @param what the job, for the log line of a failed run, e.g. "reservation sweep"
   * @param job one run; resolves with how many things it handled
   */
  constructor(
    private readonly what: string,
    private readonly intervalMs: number,
    private readonly job: () => Promise<number>,
  ) {}

  /** Runs now (work may have come due while the service was down) and then every interval. */
  start(): this {
    this.timer = setInterval(() => void this.runNow(), this.intervalMs);
    void this.runNow();
    return this;
  }

  /** Runs now, or joins the run in progress; resolves with what it handled (0 after a failure or once stopped). */
  runNow(): Promise<number> {
    if (this.isStopped) return Promise.resolve(0);
    this.running ??= this.job()
      .catch((err: unknown) => {
        log.warn(`${this.what} failed; the next one retries`, { err });
        return 0;
      })
      .finally(() => {
        this.running = undefined;
      });
    return this.running;
  }

  /** Whether stop() was called: a long run checks it between batches. */
  get stopped(): boolean {
    return this.isStopped;
  }

  /** Stops the timer and waits for a run in progress. */
  async stop(): Promise<void> {
    this.isStopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.running;
  }
}
