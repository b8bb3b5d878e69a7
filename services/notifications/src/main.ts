import { startService } from "@bazaar/platform/service";
import { NotificationsService } from "@bazaar/proto/bazaar/notifications/v1/notifications_pb";
import { consumeEvents } from "./consumer.ts";
import * as schema from "./db/schema.ts";
import { env } from "./env.ts";
import { NotificationStore } from "./notifications.ts";
import { notificationsAccess, notificationsHandlers } from "./rpc.ts";

const service = startService("notifications", env);
const database = await service.openDatabase({ schema });
await consumeEvents(await service.connectBroker(), database);
service.addGrpc(NotificationsService, notificationsHandlers(new NotificationStore(database)), notificationsAccess);
await service.listen();
