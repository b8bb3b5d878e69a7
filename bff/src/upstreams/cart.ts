import { createClient, type GrpcClient } from "@bazaar/platform/grpc/client";
import { CartService } from "@bazaar/proto/bazaar/cart/v1/cart_pb";

/** The BFF's client of the cart service, always called with the signed-in user's token. */
export type CartClient = GrpcClient<typeof CartService>;

/** Connects to the cart service; every call has the given deadline unless it sets its own. */
export function createCartClient(address: string, timeoutMs: number): CartClient {
  return createClient(CartService, address, { defaultTimeoutMs: timeoutMs });
}
