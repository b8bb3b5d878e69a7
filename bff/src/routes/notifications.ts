import { Hono } from "hono";
import { z } from "zod";
import { type AppEnv, requireUser } from "../auth.ts";
import { notificationView } from "../shape.ts";
import type { NotificationsClient } from "../upstreams/notifications.ts";
import { pageSizeQuery, valid } from "../validate.ts";

const listQuery = z.object({
  pageSize: pageSizeQuery(20),
  pageToken: z.string().max(1024, "is too long").optional().default(""),
  unreadOnly: z
    .enum(["true", "false"], { error: "must be true or false" })
    .optional()
    .default("false")
    .transform((v) => v === "true"),
});

const readBody = z
  .object({
    ids: z.array(z.uuid("must be a notification id")).min(1, "must name at least one notification").max(100, "must name at most 100 notifications").optional(),
    all: z.boolean({ error: "must be true or false" }).optional(),
  })
  .refine((b) => b.all === true || (b.ids?.length ?? 0) > 0, { message: "send ids, or all: true", path: ["ids"] });

/** /api/notifications: the signed-in user's messages from the shop. */
export function notificationRoutes(notifications: NotificationsClient) {
  return new Hono<AppEnv>()
    .use(requireUser)
    .get("/", valid("query", listQuery), async (c) => {
      const page = await notifications.listNotifications(c.req.valid("query"), await c.var.auth());
      return c.json({ notifications: page.notifications.map(notificationView), unreadCount: page.unreadCount, nextPageToken: page.nextPageToken || null });
    })
    .post("/read", valid("json", readBody), async (c) => {
      const { ids, all } = c.req.valid("json");
      const res = await notifications.markRead({ ids: all ? [] : (ids ?? []), all: all ?? false }, await c.var.auth());
      return c.json({ marked: res.marked });
    });
}
