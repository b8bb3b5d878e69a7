import { log } from "@bazaar/platform/log";
import { PeriodicTask } from "@bazaar/platform/periodic-task";
import type { InventoryStore } from "./inventory-store.ts";

/**
 * Gives back the stock of reservations nobody committed or released in time (an order whose
 * saga died, a client that never came back): every `intervalMs` it expires what is due, in
 * batches, until nothing is left. Replicas each run one; they skip each other's rows.
 */
export class ReservationSweeper {
  private readonly task: PeriodicTask;

  constructor(
    private readonly store: InventoryStore,
    intervalMs: number,
    private readonly batchSize = 100,
  ) {
    this.task = new PeriodicTask("reservation sweep", intervalMs, () => this.expireAll());
  }

  /** Sweeps now (reservations may have expired while the service was down) and then every interval. */
  start(): this {
    this.task.start();
    return this;
  }

  /** Sweeps now (joining a sweep already running); resolves with how many reservations expired. */
  sweep(): Promise<number> {
    return this.task.runNow();
  }

  private async expireAll(): Promise<number> {
    let total = 0;
    for (;;) {
      const expired = await this.store.expireDue(this.batchSize);
      total += expired;
      if (expired < this.batchSize || this.task.stopped) break;
    }
    if (total) log.info("expired reservations and gave their stock back", { reservations: total });
    return total;
  }

  /** Stops sweeping and waits for a sweep in progress. */
  stop(): Promise<void> {
    return this.task.stop();
  }
}
