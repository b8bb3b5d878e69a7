import { log } from "@bazaar/platform/log";
import type { InventoryStore } from "./inventory-store.ts";

/**
 * Gives back the stock of reservations nobody committed or released in time (an order whose
 * saga died, a client that never came back): every `intervalMs` it expires what is due, in
 * batches, until nothing is left. Replicas each run one; they skip each other's rows.
 */
export class ReservationSweeper {
  private timer: ReturnType<typeof setInterval> | undefined;
  private running: Promise<number> | undefined;
  private stopped = false;

  constructor(
    private readonly store: InventoryStore,
    private readonly intervalMs: number,
    private readonly batchSize = 100,
  ) {}

  /** Sweeps now (reservations may have expired while the service was down) and then every interval. */
  start(): this {
    this.timer = setInterval(() => void this.sweep(), this.intervalMs);
    void this.sweep();
    return this;
  }

  /** Sweeps now (joining a sweep already running); resolves with how many reservations expired. */
  sweep(): Promise<number> {
    if (this.stopped) return Promise.resolve(0);
    this.running ??= this.expireAll()
      .catch((err: unknown) => {
        log.warn("reservation sweep failed; the next one retries", { err });
        return 0;
      })
      .finally(() => {
        this.running = undefined;
      });
    return this.running;
  }

  private async expireAll(): Promise<number> {
    let total = 0;
    for (;;) {
      const expired = await this.store.expireDue(this.batchSize);
      total += expired;
      if (expired < this.batchSize || this.stopped) break;
    }
    if (total) log.info("expired reservations and gave their stock back", { reservations: total });
    return total;
  }

  /** Stops sweeping and waits for a sweep in progress. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.running;
  }
}
