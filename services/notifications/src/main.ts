import { startService } from "@bazaar/platform/service";
import { NotificationsService } from "@bazaar/proto/bazaar/notifications/v1/notifications_pb";
import { consumeEvents } from "./consumer.ts";
import * as schema from "./db/schema.ts";
import { env } from "./env.ts";
import { NotificationStore } from "./notifications.ts";
import { notificationsAccess, notificationsHandlers } from "./rpc.ts";

const service = startService("notifications", env).useAuth({ jwksUrl: env.JWKS_URL, issuer: env.JWT_ISSUER, audience: env.JWT_AUDIENCE });
const database = await service.openDatabase({ url: env.DATABASE_URL, schema, migrationsFolder: `${import.meta.dir}/../drizzle` });
const broker = await service.connectBroker(env.AMQP_URL);
await consumeEvents(broker, database);
service.addGrpc(NotificationsService, notificationsHandlers(new NotificationStore(database)), notificationsAccess);
await service.listen();
