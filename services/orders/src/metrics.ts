import { Counter, Histogram } from "prom-client";
import { registry } from "@bazaar/platform/metrics";

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
