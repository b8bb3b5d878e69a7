import { createClient, type GrpcClient } from "@bazaar/platform/grpc/client";
import { OrdersService } from "@bazaar/proto/bazaar/orders/v1/orders_pb";

/** The BFF's client of the orders service: checkout, order history and cancellation, with the user's token. */
export type OrdersClient = GrpcClient<typeof OrdersService>;

/** Connects to the orders service; every call has the given deadline unless it sets its own. */
export function createOrdersClient(address: string, timeoutMs: number): OrdersClient {
  return createClient(OrdersService, address, { defaultTimeoutMs: timeoutMs });
}
