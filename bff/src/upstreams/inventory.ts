import { createClient, type GrpcClient } from "@bazaar/platform/grpc/client";
import { InventoryService } from "@bazaar/proto/bazaar/inventory/v1/inventory_pb";

/** The BFF's client of the inventory service: stock levels (batched) and, for admins, adjustments. */
export type InventoryClient = GrpcClient<typeof InventoryService>;

/** Connects to the inventory service; every call has the given deadline unless it sets its own. */
export function createInventoryClient(address: string, timeoutMs: number): InventoryClient {
  return createClient(InventoryService, address, { defaultTimeoutMs: timeoutMs });
}
