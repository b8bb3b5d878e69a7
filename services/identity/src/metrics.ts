import { Counter } from "prom-client";
import { registry } from "@bazaar/platform/metrics";

/** Password sign-ins, by outcome: ok, wrong_credentials or throttled (refused before any check). */
export const signIns = new Counter({
  name: "bazaar_identity_sign_ins_total",
  help: "Password sign-ins by outcome.",
  labelNames: ["outcome"] as const,
  registers: [registry],
});

/** Refresh tokens presented after they were used: a stolen token, or a client racing itself. */
export const refreshReuseDetected = new Counter({
  name: "bazaar_identity_refresh_token_reuse_total",
  help: "Refresh tokens presented a second time; each revoked its family.",
  registers: [registry],
});

/** Refresh tokens deleted by the purge, their families long expired (see refresh-token-purge.ts). */
export const refreshTokensPurged = new Counter({
  name: "bazaar_identity_refresh_tokens_purged_total",
  help: "Expired refresh tokens deleted by the purge.",
  registers: [registry],
});

/**
 * Requests to the OAuth token endpoint, by outcome: issued, or the OAuth error answered
 * (invalid_client counts failed client authentications; temporarily_unavailable, throttled ones).
 */
export const tokenRequests = new Counter({
  name: "bazaar_identity_token_requests_total",
  help: "OAuth token endpoint requests by outcome: issued or the error code.",
  labelNames: ["outcome"] as const,
  registers: [registry],
});
