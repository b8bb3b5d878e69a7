import { createClient, type GrpcClient } from "@bazaar/platform/grpc/client";
import { NotificationsService } from "@bazaar/proto/bazaar/notifications/v1/notifications_pb";

/** The BFF's client of the notifications service, with the user's token. */
export type NotificationsClient = GrpcClient<typeof NotificationsService>;

/** Connects to the notifications service; every call has the given deadline unless it sets its own. */
export function createNotificationsClient(address: string, timeoutMs: number): NotificationsClient {
  return createClient(NotificationsService, address, { defaultTimeoutMs: timeoutMs });
}
