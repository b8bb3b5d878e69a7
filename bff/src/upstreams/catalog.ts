import { createClient, type GrpcClient } from "@bazaar/platform/grpc/client";
import { CatalogService } from "@bazaar/proto/bazaar/catalog/v1/catalog_pb";

/** The BFF's client of the catalog service. */
export type CatalogClient = GrpcClient<typeof CatalogService>;

/** Connects to the catalog service; every call has the given deadline unless it sets its own. */
export function createCatalogClient(address: string, timeoutMs: number): CatalogClient {
  return createClient(CatalogService, address, { defaultTimeoutMs: timeoutMs });
}
