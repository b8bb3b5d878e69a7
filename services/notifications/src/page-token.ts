import { InvalidArgumentError } from "@bazaar/platform/errors";

/** Where the previous page of a user's notifications ended, and which listing it belongs to. */
export interface NotificationCursor {
  /** created_at of the last notification on the previous page, in epoch milliseconds. */
  createdAtMs: number;
  /** Its id: the tie-breaker between notifications made in the same millisecond. */
  id: string;
  /** Whether the listing was of unread notifications only; a token is only good for the same. */
  unreadOnly: boolean;
}

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Page tokens are opaque to clients: base64url of a small JSON cursor. Keyset paging on
 * (created_at, id), newest first, means a page never repeats or skips a notification, even
 * while new ones arrive or old ones are marked read.
 */
export function encodePageToken(cursor: NotificationCursor): string {
  return Buffer.from(JSON.stringify({ v: 1, t: cursor.createdAtMs, i: cursor.id, u: cursor.unreadOnly })).toString("base64url");
}

/** Decodes a page token, or fails with INVALID_ARGUMENT (field page_token) saying what to do instead. */
export function decodePageToken(token: string, unreadOnly: boolean): NotificationCursor {
  const invalid = () =>
    new InvalidArgumentError("is not a token this service issued; start again from the first page without one", "page_token");
  if (token.length > 256 || !/^[A-Za-z0-9_-]+$/.test(token)) throw invalid();
  let raw: unknown;
  try {
    raw = JSON.parse(Buffer.from(token, "base64url").toString("utf8"));
  } catch {
    throw invalid();
  }
  const t = raw as { v?: unknown; t?: unknown; i?: unknown; u?: unknown } | null;
  if (
    typeof t !== "object" ||
    t === null ||
    t.v !== 1 ||
    typeof t.t !== "number" ||
    !Number.isSafeInteger(t.t) ||
    t.t < 0 ||
    typeof t.i !== "string" ||
    !uuidPattern.test(t.i) ||
    typeof t.u !== "boolean"
  ) {
    throw invalid();
  }
  if (t.u !== unreadOnly) {
    throw new InvalidArgumentError(
      `was issued for a listing with unread_only=${t.u}; ask with the same unread_only or start again without a token`,
      "page_token",
    );
  }
  return { createdAtMs: t.t, id: t.i, unreadOnly: t.u };
}
