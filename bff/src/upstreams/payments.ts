import { createClient, type GrpcClient } from "@bazaar/platform/grpc/client";
import { PaymentsService } from "@bazaar/proto/bazaar/payments/v1/payments_pb";

/** The BFF's client of the payments service: tokenizing the shopper's card at checkout, with the user's token. */
export type PaymentsClient = GrpcClient<typeof PaymentsService>;

/** Connects to the payments service; every call has the given deadline unless it sets its own. */
export function createPaymentsClient(address: string, timeoutMs: number): PaymentsClient {
  return createClient(PaymentsService, address, { defaultTimeoutMs: timeoutMs });
}
