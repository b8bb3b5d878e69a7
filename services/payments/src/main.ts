import { PeriodicTask } from "@bazaar/platform/periodic-task";
import { startService } from "@bazaar/platform/service";
import { PaymentsService } from "@bazaar/proto/bazaar/payments/v1/payments_pb";
import * as schema from "./db/schema.ts";
import { env } from "./env.ts";
import { FaultSettingsStore } from "./fault-settings.ts";
import { PaymentStore } from "./payments.ts";
import { SimulatedProcessor } from "./processor.ts";
import { paymentsAccess, paymentsHandlers } from "./rpc.ts";

const service = startService("payments", env);
const database = await service.openDatabase({ schema, maxConnections: env.DATABASE_MAX_CONNECTIONS });
const relay = await service.useOutbox(database);
const faults = new FaultSettingsStore(database, { cacheMs: env.FAULT_SETTINGS_CACHE_MS });
const payments = new PaymentStore(database, new SimulatedProcessor(), faults, {
  requestHashSecret: env.REQUEST_HASH_SECRET,
  paymentMethodTtlMs: env.PAYMENT_METHOD_TTL_SECONDS * 1000,
  outbox: relay,
});
const purge = new PeriodicTask("expired payment method purge", 10 * 60_000, () => payments.purgeExpiredPaymentMethods()).start();
service.onShutdown("expired payment method purge", () => purge.stop());
service.addGrpc(PaymentsService, paymentsHandlers(payments, faults), paymentsAccess);
await service.listen();
