import { z } from "zod";
import type { AccountsOptions } from "./accounts.ts";
import { amqpEnv, authEnv, flagVar, parseEnv, redisEnv, serviceEnv } from "@bazaar/platform/env";
import { oauthClientsVar } from "./oauth-clients.ts";
import { minimumLeadSeconds, type SigningKeySettings } from "./signing-keys.ts";
import type { TokenEndpointOptions } from "./token-endpoint.ts";

const seconds = (min: number, max: number, fallback: number) => z.coerce.number().int().min(min).max(max).default(fallback);

/** The identity service's variables (exported for tests of the defaults; the service reads {@link env}). */
export const identityEnv = z
  .object({
    ...serviceEnv("identity"),
    // Login throttling counts failures in Redis, under REDIS_KEY_PREFIX.
    ...redisEnv,
    ...amqpEnv,
    // The `iss` and `aud` identity puts in its tokens (and checks). JWKS_URL is not used:
    // identity verifies tokens against its own key set, in process (see main.ts).
    JWT_ISSUER: authEnv.JWT_ISSUER,
    JWT_AUDIENCE: authEnv.JWT_AUDIENCE,
    /** The OAuth clients (calling services) and the hashes of their secrets; see oauth-clients.ts. */
    OAUTH_CLIENTS: oauthClientsVar,
    /** Lifetime of a user's access token. */
    ACCESS_TOKEN_TTL_SECONDS: seconds(30, 86_400, 900),
    /** Lifetime of a refresh token (each Refresh issues a new one with a fresh lifetime). */
    REFRESH_TOKEN_TTL_SECONDS: seconds(60, 365 * 86_400, 30 * 86_400),
    /** How often expired refresh tokens are purged, in milliseconds (see refresh-token-purge.ts). */
    REFRESH_TOKEN_PURGE_MS: z.coerce.number().int().min(1000).max(86_400_000).default(600_000),
    /** How long a family's rows are kept after its last token expired (clock skew, requests in flight). */
    REFRESH_TOKEN_PURGE_GRACE_SECONDS: seconds(60, 30 * 86_400, 86_400),
    /** Lifetime of a service's access token (the token endpoint's); callers renew a minute early. */
    SERVICE_TOKEN_TTL_SECONDS: seconds(30, 3_600, 300),
    // Signing-key rotation (see signing-keys.ts). JWKS_CACHE_SECONDS is the max-age of the JWKS
    // identity serves, and the longest the lead assumes any verifier keeps a copy.
    JWKS_CACHE_SECONDS: authEnv.JWKS_CACHE_SECONDS,
    /** How long each signing key signs before its successor takes over. */
    SIGNING_KEY_ROTATION_SECONDS: seconds(2, 365 * 86_400, 30 * 86_400),
    /** How long a new key is in the JWKS before it signs. */
    SIGNING_KEY_LEAD_SECONDS: seconds(1, 30 * 86_400, 3600),
    /** How often each replica reloads the signing keys (making a successor or removing a key when due), in milliseconds. */
    SIGNING_KEY_RELOAD_MS: z.coerce.number().int().min(100).max(300_000).default(10_000),
    /**
     * Where identity is reached from outside, e.g. https://identity.bazaar.example; the
     * discovery document's jwks_uri is built from it. Unset: from the request's Host.
     */
    PUBLIC_URL: z
      .string()
      .url()
      .optional()
      .or(z.literal("").transform(() => undefined)),
    /** Make sure the demo admin account exists at start (the dev runner sets it). */
    SEED_DEMO_DATA: flagVar(false),
    /** The demo admin's email (with SEED_DEMO_DATA). Default: admin@bazaar.local. */
    ADMIN_EMAIL: z.string().email().default("admin@bazaar.local"),
    /** The demo admin's password (with SEED_DEMO_DATA). Default: bazaar-admin. Change it anywhere real. */
    ADMIN_PASSWORD: z.string().min(10).max(128).default("bazaar-admin"),
  })
  .superRefine((e, ctx) => {
    const minimum = minimumLeadSeconds(e.JWKS_CACHE_SECONDS, e.SIGNING_KEY_RELOAD_MS);
    if (e.SIGNING_KEY_LEAD_SECONDS < minimum) {
      ctx.addIssue({
        code: "custom",
        path: ["SIGNING_KEY_LEAD_SECONDS"],
        message: `must be at least ${minimum} (JWKS_CACHE_SECONDS + SIGNING_KEY_RELOAD_MS + the clock tolerance), so that every verifier has a new key before it signs`,
      });
    }
    if (e.SIGNING_KEY_ROTATION_SECONDS < e.SIGNING_KEY_LEAD_SECONDS) {
      ctx.addIssue({
        code: "custom",
        path: ["SIGNING_KEY_ROTATION_SECONDS"],
        message: `must be at least SIGNING_KEY_LEAD_SECONDS (${e.SIGNING_KEY_LEAD_SECONDS}): each successor is published a lead before it signs`,
      });
    }
  });

/** The identity service's configuration, validated at start. */
export const env = parseEnv(identityEnv);

/** Token lifetimes, as Accounts takes them. */
export const accountSettings: AccountsOptions = {
  accessTokenTtlSeconds: env.ACCESS_TOKEN_TTL_SECONDS,
  refreshTokenTtlSeconds: env.REFRESH_TOKEN_TTL_SECONDS,
};

/** The clients and the service-token lifetime, as the token endpoint takes them. */
export const tokenEndpointSettings: TokenEndpointOptions = {
  clients: env.OAUTH_CLIENTS,
  ttlSeconds: env.SERVICE_TOKEN_TTL_SECONDS,
};

/** How signing keys rotate, as SigningKeys takes it. */
export const signingKeySettings: SigningKeySettings = {
  rotationSeconds: env.SIGNING_KEY_ROTATION_SECONDS,
  leadSeconds: env.SIGNING_KEY_LEAD_SECONDS,
  reloadMs: env.SIGNING_KEY_RELOAD_MS,
  // Every token identity signs: users' access tokens and services'.
  longestTokenTtlSeconds: Math.max(env.ACCESS_TOKEN_TTL_SECONDS, env.SERVICE_TOKEN_TTL_SECONDS),
};
