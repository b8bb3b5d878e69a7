import { and, count, desc, eq, inArray, isNull, sql } from "drizzle-orm";
import type { Database } from "@bazaar/platform/db";
import { notifications, type NotificationRow } from "./db/schema.ts";
import type * as schema from "./db/schema.ts";
import { uuidPattern } from "@bazaar/platform/ids";

/** The notifications service's database. */
export type NotificationsDatabase = Database<typeof schema>;

/**
 * Where the previous page of a user's notifications ended. Keyset paging on (created_at, id),
 * newest first, means a page never repeats or skips a notification, even while new ones arrive
 * or old ones are marked read.
 */
export interface NotificationCursor {
  /** created_at of the last notification on the previous page, in epoch milliseconds. */
  createdAtMs: number;
  /** Its id: the tie-breaker between notifications made in the same millisecond. */
  id: string;
}

/** One page of a user's notifications, newest first. */
export interface NotificationPage {
  notifications: NotificationRow[];
  /** The position after the last notification, when there are more. */
  next?: NotificationCursor;
}

/**
 * Notifications are only ever made for UUID user ids, so a caller whose token subject is not
 * one owns none (and never reaches a uuid comparison that Postgres would refuse).
 */
function ownsAny(userId: string): boolean {
  return uuidPattern.test(userId);
}

/** A user's notifications: listing, unread count and marking read. Every query is scoped to one user. */
export class NotificationStore {
  constructor(private readonly database: NotificationsDatabase) {}

  /** One page of the user's notifications ordered by (created_at, id) descending, after `cursor` if given. */
  async list(userId: string, options: { pageSize: number; unreadOnly: boolean; after?: NotificationCursor }): Promise<NotificationPage> {
    if (!ownsAny(userId)) return { notifications: [] };
    const { pageSize, unreadOnly, after } = options;
    const rows = await this.database.db
      .select()
      .from(notifications)
      .where(
        and(
          eq(notifications.userId, userId),
          unreadOnly ? isNull(notifications.readAt) : undefined,
          // A row comparison, so Postgres walks the (user_id, created_at desc, id desc) index from the cursor on.
          after
            ? sql`(${notifications.createdAt}, ${notifications.id}) < (${new Date(after.createdAtMs).toISOString()}::timestamptz, ${after.id}::uuid)`
            : undefined,
        ),
      )
      .orderBy(desc(notifications.createdAt), desc(notifications.id))
      .limit(pageSize + 1);
    const page = rows.slice(0, pageSize);
    const last = page.at(-1);
    return {
      notifications: page,
      next: rows.length > pageSize && last ? { createdAtMs: last.createdAt.getTime(), id: last.id } : undefined,
    };
  }

  /** How many of the user's notifications are unread. */
  async unreadCount(userId: string): Promise<number> {
    if (!ownsAny(userId)) return 0;
    const [row] = await this.database.db
      .select({ n: count() })
      .from(notifications)
      .where(and(eq(notifications.userId, userId), isNull(notifications.readAt)));
    return row?.n ?? 0;
  }

  /**
   * Marks the user's notifications read: those with the given ids, or all of them. Ids of
   * other users' notifications (or of none) change nothing. Returns how many went from unread
   * to read.
   */
  async markRead(userId: string, which: { ids: readonly string[] } | "all"): Promise<number> {
    if (!ownsAny(userId)) return 0;
    const changed = await this.database.db
      .update(notifications)
      .set({ readAt: sql`now()` })
      .where(and(eq(notifications.userId, userId), isNull(notifications.readAt), which === "all" ? undefined : inArray(notifications.id, [...which.ids])))
      .returning({ id: notifications.id });
    return changed.length;
  }
}
