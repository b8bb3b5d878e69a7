import { hostname } from "node:os";
import { ServiceTokenSource } from "@bazaar/platform/service-token";
import { startService } from "@bazaar/platform/service";
import { OrdersService } from "@bazaar/proto/bazaar/orders/v1/orders_pb";
import * as schema from "./db/schema.ts";
import { env } from "./env.ts";
import { grpcSagaPorts } from "./grpc-ports.ts";
import { OrderStore } from "./orders.ts";
import { ordersAccess, ordersHandlers } from "./rpc.ts";
import { SagaExecutor } from "./saga.ts";

const service = startService("orders", env);
const database = await service.openDatabase({ schema });
const relay = await service.useOutbox(database);
// The saga calls inventory and payments as the orders service itself (role "service").
const tokens = new ServiceTokenSource(env.IDENTITY_ADDR, "orders", env.INTERNAL_AUTH_SECRET);
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
// Runs before the relay, broker and database close (closers run in reverse order).
service.onShutdown("saga executor", async () => {
  await executor.stop();
  ports.close();
  tokens.close();
});
const store = new OrderStore(database, ports, executor, relay, { waitMs: env.PLACE_ORDER_WAIT_MS, fingerprintKey: env.REQUEST_HASH_SECRET });
service.addGrpc(OrdersService, ordersHandlers(store, { waitMs: env.PLACE_ORDER_WAIT_MS }), ordersAccess);
await service.listen();
// The port is ours now: whatever this instance held when it last died can resume at once.
await executor.reclaimFromPreviousRun();
