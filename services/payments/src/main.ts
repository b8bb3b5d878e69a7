import { startService } from "@bazaar/platform/service";
import { PaymentsService } from "@bazaar/proto/bazaar/payments/v1/payments_pb";
import * as schema from "./db/schema.ts";
import { env } from "./env.ts";
import { FaultSettingsStore } from "./fault-settings.ts";
import { PaymentStore } from "./payments.ts";
import { SimulatedProcessor } from "./processor.ts";
import { paymentsAccess, paymentsHandlers } from "./rpc.ts";

const service = startService("payments", env).useAuth({ jwksUrl: env.JWKS_URL, issuer: env.JWT_ISSUER, audience: env.JWT_AUDIENCE });
const database = await service.openDatabase({
  url: env.DATABASE_URL,
  schema,
  migrationsFolder: `${import.meta.dir}/../drizzle`,
  maxConnections: env.DATABASE_MAX_CONNECTIONS,
});
const broker = await service.connectBroker(env.AMQP_URL);
const relay = service.startOutboxRelay(database.db, broker);
const faults = new FaultSettingsStore(database, { cacheMs: env.FAULT_SETTINGS_CACHE_MS });
const payments = new PaymentStore(database, new SimulatedProcessor(), faults, { requestHashSecret: env.REQUEST_HASH_SECRET, outbox: relay });
service.addGrpc(PaymentsService, paymentsHandlers(payments, faults), paymentsAccess);
await service.listen();
