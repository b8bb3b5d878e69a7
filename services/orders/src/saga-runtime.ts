import { hostname } from "node:os";
import type { OutboxSignal } from "@bazaar/platform/messaging/outbox";
import type { ServiceHost } from "@bazaar/platform/service";
import { ServiceTokenSource } from "@bazaar/platform/service-token";
import { env } from "./env.ts";
import { grpcSagaPorts } from "./grpc-ports.ts";
import { type OrdersDatabase, SagaExecutor } from "./saga.ts";
import type { SagaPorts } from "./saga-ports.ts";

/**
 * Starts the checkout saga as this process runs it: its ports to catalog, inventory and
 * payments over gRPC, called as the orders service itself (role "service"), and the executor
 * that drives every saga. Both stop at shutdown before the relay, broker and database close
 * (closers run in reverse order).
 */
export function startSaga(service: ServiceHost, database: OrdersDatabase, relay: OutboxSignal): { ports: SagaPorts; executor: SagaExecutor } {
  const tokens = new ServiceTokenSource({ tokenUrl: env.OAUTH_TOKEN_URL, clientId: env.OAUTH_CLIENT_ID, clientSecret: env.OAUTH_CLIENT_SECRET });
  const ports = grpcSagaPorts({
    catalogAddress: env.CATALOG_ADDR,
    inventoryAddress: env.INVENTORY_ADDR,
    paymentsAddress: env.PAYMENTS_ADDR,
    tokens,
    callTimeoutMs: env.SAGA_CALL_TIMEOUT_MS,
  });
  const executor = new SagaExecutor(database, ports, relay, {
    leaseMs: env.SAGA_LEASE_MS,
    pollMs: env.SAGA_POLL_MS,
    retryBaseMs: env.SAGA_RETRY_BASE_MS,
    retryMaxMs: env.SAGA_RETRY_MAX_MS,
    // Only one live process can serve this host's port, so it names this process across restarts.
    instanceId: env.GRPC_PORT ? `${hostname()}:${env.GRPC_PORT}` : undefined,
  }).start();
  service.onShutdown("saga executor", async () => {
    await executor.stop();
    ports.close();
  });
  return { ports, executor };
}
