import { startService } from "@bazaar/platform/service";
import { OrdersService } from "@bazaar/proto/bazaar/orders/v1/orders_pb";
import * as schema from "./db/schema.ts";
import { env } from "./env.ts";
import { OrderStore } from "./orders.ts";
import { ordersAccess, ordersHandlers } from "./rpc.ts";
import { startSaga } from "./saga-runtime.ts";

const service = startService("orders", env);
const database = await service.openDatabase({ schema });
const relay = await service.useOutbox(database);
const { ports, executor } = startSaga(service, database, relay);
const store = new OrderStore(database, ports, executor, relay, { waitMs: env.PLACE_ORDER_WAIT_MS });
service.addGrpc(OrdersService, ordersHandlers(store, { waitMs: env.PLACE_ORDER_WAIT_MS }), ordersAccess);
await service.listen();
// The port is ours now: whatever this instance held when it last died can resume at once.
await executor.reclaimFromPreviousRun();
