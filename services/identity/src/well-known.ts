import type { Hono } from "hono";
import type { JSONWebKeySet } from "jose";
import { jwtSettings } from "@bazaar/platform/auth";
import { supportedAuthMethods, supportedGrantTypes, tokenEndpointPath } from "./token-endpoint.ts";

/** Options of {@link addWellKnownRoutes}. */
export interface WellKnownOptions {
  /** The `iss` of identity's tokens. */
  issuer: string;
  /** The published keys as they are now (they rotate). */
  jwks: () => JSONWebKeySet;
  /** How long verifiers and caches may keep the documents (JWKS_CACHE_SECONDS). */
  cacheSeconds: number;
  /**
   * Identity's public base URL. Without it, URLs are built from the request's scheme and Host,
   * which is right for direct calls but not behind a proxy that terminates TLS: set it there.
   */
  publicUrl?: string | undefined;
}

/**
 * Serves the documents verifiers need: the JWKS (RFC 7517) at /.well-known/jwks.json and an
 * OpenID Provider discovery document at /.well-known/openid-configuration that points to it
 * and to the token endpoint (client credentials for services, see token-endpoint.ts). Users
 * sign in over gRPC, so the document lists no authorization endpoint.
 */
export function addWellKnownRoutes(app: Hono, options: WellKnownOptions): void {
  // Verifiers and caches in between keep the key set at most this long: a new key is published
  // longer than that before it signs (SIGNING_KEY_LEAD_SECONDS), so every copy has it in time.
  const cacheControl = `public, max-age=${options.cacheSeconds}`;
  app.get("/.well-known/jwks.json", (c) =>
    c.body(JSON.stringify(options.jwks()), 200, { "content-type": "application/jwk-set+json", "cache-control": cacheControl }),
  );
  app.get("/.well-known/openid-configuration", (c) => {
    const base = (options.publicUrl ?? new URL(c.req.url).origin).replace(/\/+$/, "");
    return c.json(
      {
        issuer: options.issuer,
        jwks_uri: `${base}/.well-known/jwks.json`,
        token_endpoint: `${base}${tokenEndpointPath}`,
        grant_types_supported: supportedGrantTypes,
        token_endpoint_auth_methods_supported: supportedAuthMethods,
        subject_types_supported: ["public"],
        id_token_signing_alg_values_supported: [jwtSettings.algorithm],
        claims_supported: ["iss", "aud", "sub", "roles", "iat", "exp", "jti"],
      },
      200,
      { "cache-control": cacheControl },
    );
  });
}
