import { InvalidArgumentError } from "@bazaar/platform/errors";
import type { OrderCursor } from "./orders.ts";

/** Which listing a token belongs to: a user's own orders, or (admins) everyone's. */
export type ListScope = "own" | "all";

/**
 * ListOrders page tokens are opaque to clients: base64url of a small JSON cursor, the
 * (created_at, id) of the last order of the previous page. Keyset paging means a page never
 * repeats or skips an order, even while new orders arrive.
 */
export function encodePageToken(cursor: OrderCursor, scope: ListScope): string {
  return Buffer.from(JSON.stringify({ v: 1, t: cursor.createdAt.toISOString(), i: cursor.id, s: scope })).toString("base64url");
}

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Decodes a page token, or fails with INVALID_ARGUMENT saying what to do instead. */
export function decodePageToken(token: string, scope: ListScope): OrderCursor {
  const invalid = () => new InvalidArgumentError("is not a token this service issued; start again from the first page without one", "page_token");
  if (token.length > 512 || !/^[A-Za-z0-9_-]+$/.test(token)) throw invalid();
  let raw: unknown;
  try {
    raw = JSON.parse(Buffer.from(token, "base64url").toString("utf8"));
  } catch {
    throw invalid();
  }
  const t = raw as { v?: unknown; t?: unknown; i?: unknown; s?: unknown };
  if (t.v !== 1 || typeof t.t !== "string" || typeof t.i !== "string" || !uuidPattern.test(t.i) || (t.s !== "own" && t.s !== "all")) throw invalid();
  const createdAt = new Date(t.t);
  if (Number.isNaN(createdAt.getTime())) throw invalid();
  if (t.s !== scope) throw new InvalidArgumentError("was issued to a caller with other rights; start again from the first page", "page_token");
  return { createdAt, id: t.i };
}
