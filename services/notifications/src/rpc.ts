import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { requireUserId } from "@bazaar/platform/auth";
import { InvalidArgumentError } from "@bazaar/platform/errors";
import type { ServiceAccess, ServiceImpl } from "@bazaar/platform/grpc/server";
import { NotificationsService, type NotificationSchema } from "@bazaar/proto/bazaar/notifications/v1/notifications_pb";
import type { NotificationRow } from "./db/schema.ts";
import type { NotificationStore } from "./notifications.ts";
import { decodePageToken, encodePageToken } from "./page-token.ts";

const defaultPageSize = 20;
const maxPageSize = 100;
const maxIds = 100;
const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Row → message. */
export function toNotificationMessage(n: NotificationRow): MessageInitShape<typeof NotificationSchema> {
  return {
    id: n.id,
    kind: n.kind,
    title: n.title,
    body: n.body,
    read: n.readAt !== null,
    orderId: n.orderId ?? "",
    createTime: timestampFromDate(n.createdAt),
  };
}

/** Who may call what: both RPCs act for the signed-in user on their own notifications. */
export const notificationsAccess: ServiceAccess<typeof NotificationsService> = {
  listNotifications: "user",
  markRead: "user",
};

/** The ids of a MarkRead request, checked: 1 to 100 UUIDs, each once. */
function notificationIds(ids: readonly string[]): string[] {
  if (ids.length > maxIds) throw new InvalidArgumentError(`must name at most ${maxIds} notifications, got ${ids.length}`, "ids");
  ids.forEach((id, i) => {
    if (!uuidPattern.test(id)) throw new InvalidArgumentError(`must be a notification id (a UUID), got ${JSON.stringify(id.slice(0, 64))}`, `ids[${i}]`);
  });
  return [...new Set(ids.map((id) => id.toLowerCase()))];
}

/**
 * The notifications RPC handlers: validate the request, ask the store for the caller's own
 * notifications only (a service token has no user and is refused), shape the response.
 */
export function notificationsHandlers(store: NotificationStore): ServiceImpl<typeof NotificationsService> {
  return {
    async listNotifications(req, ctx) {
      const userId = requireUserId(ctx.principal);
      if (req.pageSize < 0 || req.pageSize > maxPageSize) {
        throw new InvalidArgumentError(`must be between 1 and ${maxPageSize} (0 means ${defaultPageSize}), got ${req.pageSize}`, "page_size");
      }
      const after = req.pageToken ? decodePageToken(req.pageToken, req.unreadOnly) : undefined;
      const [page, unreadCount] = await Promise.all([
        store.list(userId, { pageSize: req.pageSize || defaultPageSize, unreadOnly: req.unreadOnly, after }),
        store.unreadCount(userId),
      ]);
      return {
        notifications: page.notifications.map(toNotificationMessage),
        nextPageToken: page.next ? encodePageToken({ ...page.next, unreadOnly: req.unreadOnly }) : "",
        unreadCount,
      };
    },

    async markRead(req, ctx) {
      const userId = requireUserId(ctx.principal);
      if (req.all && req.ids.length) throw new InvalidArgumentError("cannot be set together with ids; send either ids or all", "all");
      if (!req.all && req.ids.length === 0) throw new InvalidArgumentError("must name 1 to 100 notifications, or set all to mark every one read", "ids");
      const marked = await store.markRead(userId, req.all ? "all" : { ids: notificationIds(req.ids) });
      return { marked };
    },
  };
}
