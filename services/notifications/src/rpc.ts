import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { requireUserId } from "@bazaar/platform/auth";
import { InvalidArgumentError } from "@bazaar/platform/errors";
import type { ServiceAccess, ServiceImpl } from "@bazaar/platform/grpc/server";
import { isJsonObject, pageTokenCodec } from "@bazaar/platform/page-token";
import type { NotificationsService, NotificationSchema } from "@bazaar/proto/bazaar/notifications/v1/notifications_pb";
import type { NotificationRow } from "./db/schema.ts";
import type { NotificationCursor, NotificationStore } from "./notifications.ts";
import { uuidPattern } from "@bazaar/platform/ids";
import { field, list, pageSize, type Rule, uuid, validate } from "@bazaar/platform/validation";

const maxIds = 100;

/**
 * ListNotifications page tokens, each good only for the listing it was issued for: "true" for
 * unread notifications only, "false" for all.
 */
export const notificationPageTokens = pageTokenCodec<NotificationCursor>({
  parse: (c) => {
    if (!isJsonObject(c)) return undefined;
    const { createdAtMs, id } = c;
    const valid = typeof createdAtMs === "number" && Number.isSafeInteger(createdAtMs) && createdAtMs >= 0 && typeof id === "string" && uuidPattern.test(id);
    return valid ? { createdAtMs, id } : undefined;
  },
  // Made a boolean again, not quoted as sent: a token's listing is the client's to forge.
  mismatch: (issuedFor) => `was issued for a listing with unread_only=${issuedFor === "true"}; ask with the same unread_only or start again without a token`,
});

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

const notificationIds = list(uuid("a notification id"), { max: maxIds, noun: "notification" });

/**
 * What a MarkRead request marks: 1 to 100 ids (each once), or all; never both. A rule of the
 * whole request, so it names the fields (all, ids) itself.
 */
const markReadTarget: Rule<{ ids: readonly string[]; all: boolean }, "all" | { ids: string[] }> = (req) => {
  if (req.all && req.ids.length) throw new InvalidArgumentError("cannot be set together with ids; send either ids or all", "all");
  if (req.all) return "all";
  if (req.ids.length === 0) throw new InvalidArgumentError("must name 1 to 100 notifications, or set all to mark every one read", "ids");
  const { ids } = validate({ ids: field("ids", req.ids, notificationIds) });
  return { ids: [...new Set(ids)] };
};

/**
 * The notifications RPC handlers: validate the request, ask the store for the caller's own
 * notifications only (a service token has no user and is refused), shape the response.
 */
export function notificationsHandlers(store: NotificationStore): ServiceImpl<typeof NotificationsService> {
  return {
    async listNotifications(req, ctx) {
      const userId = requireUserId(ctx.principal);
      const { size } = validate({ size: field("page_size", req.pageSize, pageSize) });
      const listing = String(req.unreadOnly);
      const after = req.pageToken ? notificationPageTokens.decode(req.pageToken, listing) : undefined;
      const [page, unreadCount] = await Promise.all([store.list(userId, { pageSize: size, unreadOnly: req.unreadOnly, after }), store.unreadCount(userId)]);
      return {
        notifications: page.notifications.map(toNotificationMessage),
        nextPageToken: page.next ? notificationPageTokens.encode(page.next, listing) : "",
        unreadCount,
      };
    },

    async markRead(req, ctx) {
      const userId = requireUserId(ctx.principal);
      const { target } = validate({ target: field("", req, markReadTarget) });
      const marked = await store.markRead(userId, target);
      return { marked };
    },
  };
}
