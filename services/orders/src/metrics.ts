import { Counter, Gauge, Histogram } from "prom-client";
import { registry, ScrapeReading } from "@bazaar/platform/metrics";

/** Sagas that ended, by outcome and (for cancellations) a short reason code. */
export const sagaOutcomes = new Counter({
  name: "bazaar_saga_outcomes_total",
  help: "Order sagas that reached a final state, by outcome (confirmed, cancelled) and reason (none, out_of_stock, payment_declined, …).",
  labelNames: ["outcome", "reason"] as const,
  registers: [registry],
});

/** Time from placing an order to its final state. */
export const sagaDuration = new Histogram({
  name: "bazaar_saga_duration_seconds",
  help: "Time from PlaceOrder to the order's final state, by outcome.",
  labelNames: ["outcome"] as const,
  buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800],
  registers: [registry],
});

/** Orders accepted by PlaceOrder (each starts a saga). */
export const ordersPlaced = new Counter({
  name: "bazaar_orders_placed_total",
  help: "Orders PlaceOrder accepted and stored, each with its saga (a retried PlaceOrder with the same key is not counted again).",
  registers: [registry],
});

/** One attempt at a saga step, by step and what it came to. */
export const sagaStepDuration = new Histogram({
  name: "bazaar_saga_step_duration_seconds",
  help: "Time of one attempt at a saga step (reserve, charge, commit, refund, release) including its remote call, by step and outcome (reserved, captured, committed, declined, out_of_stock, retry, …).",
  labelNames: ["step", "outcome"] as const,
  buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  registers: [registry],
});

/** Sagas not final yet, and the age of the oldest: read at scrape time from the orders database. */
export interface SagasInFlight {
  count: number;
  /** Seconds since the oldest non-final saga began (0 when none). */
  oldestSeconds: number;
}

/** The in-flight gauges' reading: the saga executor gives it. */
export const sagasInFlightReading = new ScrapeReading<SagasInFlight>();

/** Sagas not in a final state. */
export const sagasInFlight = new Gauge({
  name: "bazaar_sagas_in_flight",
  help: "Order sagas not final yet (any replica's), read from the orders database at scrape time (the last value read while it cannot be asked).",
  registers: [registry],
  async collect() {
    const now = await sagasInFlightReading.get();
    if (now) this.set(now.count);
  },
});

/** Age of the oldest saga not final. */
export const sagaOldestInFlight = new Gauge({
  name: "bazaar_saga_oldest_in_flight_seconds",
  help: "Seconds since the oldest order saga that is not final yet was placed (0 when none), read from the orders database at scrape time.",
  registers: [registry],
  async collect() {
    const now = await sagasInFlightReading.get();
    if (now) this.set(now.oldestSeconds);
  },
});

/** Step attempts that failed in a way worth retrying. */
export const sagaRetries = new Counter({
  name: "bazaar_saga_step_retries_total",
  help: "Saga steps that failed transiently and were scheduled again, by step.",
  labelNames: ["step"] as const,
  registers: [registry],
});

// Every series exists from the start (at 0), so rates and alerts see a reason before its first occurrence.
sagaOutcomes.inc({ outcome: "confirmed", reason: "none" }, 0);
for (const reason of ["out_of_stock", "payment_declined", "payment_failed", "reserve_failed", "reservation_expired", "cancelled_by_user"]) {
  sagaOutcomes.inc({ outcome: "cancelled", reason }, 0);
}
