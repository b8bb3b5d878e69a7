import { Counter } from "prom-client";
import { registry } from "@bazaar/platform/metrics";

/**
 * What happened to reservations: how many were made, refused for want of stock, committed,
 * released, or expired. A rising share of expired ones means sagas die between reserve and commit.
 */
export const reservationOutcomes = new Counter({
  name: "bazaar_inventory_reservations_total",
  help: "Reservations by outcome: reserved, out_of_stock, committed, released, expired.",
  labelNames: ["outcome"] as const,
  registers: [registry],
});
