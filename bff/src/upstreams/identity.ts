import { createClient, type GrpcClient } from "@bazaar/platform/grpc/client";
import { type OAuthClient, ServiceTokenSource } from "@bazaar/platform/service-token";
import { IdentityService } from "@bazaar/proto/bazaar/identity/v1/identity_pb";

/** The BFF's client of the identity service: sign-up, sign-in, sign-out and token refresh. */
export type IdentityClient = GrpcClient<typeof IdentityService>;

/**
 * Connects to the identity service; every call has the given deadline unless it sets its own.
 * With the BFF's OAuth client, calls carry the BFF's service token (identity then believes the
 * shopper address a sign-in names, see routes/auth.ts).
 */
export function createIdentityClient(address: string, timeoutMs: number, oauthClient?: OAuthClient): IdentityClient {
  const tokens = oauthClient && new ServiceTokenSource(oauthClient);
  return createClient(IdentityService, address, { defaultTimeoutMs: timeoutMs, ...(tokens ? { token: tokens.token } : {}) });
}
