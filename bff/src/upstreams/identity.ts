import { createClient, type GrpcClient } from "@bazaar/platform/grpc/client";
import { IdentityService } from "@bazaar/proto/bazaar/identity/v1/identity_pb";

/** The BFF's client of the identity service: sign-up, sign-in, sign-out and token refresh. */
export type IdentityClient = GrpcClient<typeof IdentityService>;

/** Connects to the identity service; every call has the given deadline unless it sets its own. */
export function createIdentityClient(address: string, timeoutMs: number): IdentityClient {
  return createClient(IdentityService, address, { defaultTimeoutMs: timeoutMs });
}
