import { Counter, Gauge } from "prom-client";
import { registry } from "@bazaar/platform/metrics";

/** Access-token refreshes of browser sessions, by outcome. */
export const sessionRefreshes = new Counter({
  name: "bff_session_refreshes_total",
  help: "Access-token refreshes of browser sessions, by outcome (refreshed; ended: identity refused the refresh token; failed: identity unreachable).",
  labelNames: ["outcome"] as const,
  registers: [registry],
});

/** Open /api/events streams. */
export const eventStreamsOpen = new Gauge({
  name: "bff_event_streams_open",
  help: "Open /api/events streams (live order status) on this process.",
  registers: [registry],
});
