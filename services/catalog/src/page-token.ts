import { InvalidArgumentError } from "@bazaar/platform/errors";

/** Where the previous page ended, and which listing it belongs to. */
export interface PageCursor {
  /** Name of the last product on the previous page. */
  name: string;
  /** Id of the last product on the previous page (the tie-breaker). */
  id: string;
  /** The filter the token was issued for; a token is only good for the same filter. */
  filter: string;
}

/**
 * Page tokens are opaque to clients: base64url of a small JSON cursor. Keyset paging on
 * (name, id) means a page never repeats or skips a product, even while products change.
 */
export function encodePageToken(cursor: PageCursor): string {
  return Buffer.from(JSON.stringify({ v: 1, n: cursor.name, i: cursor.id, f: cursor.filter })).toString("base64url");
}

/** Decodes a page token, or fails with INVALID_ARGUMENT saying what to do instead. */
export function decodePageToken(token: string, filter: string): PageCursor {
  const invalid = () =>
    new InvalidArgumentError("is not a token this service issued; start again from the first page without one", "page_token");
  if (token.length > 1024 || !/^[A-Za-z0-9_-]+$/.test(token)) throw invalid();
  let raw: unknown;
  try {
    raw = JSON.parse(Buffer.from(token, "base64url").toString("utf8"));
  } catch {
    throw invalid();
  }
  const t = raw as { v?: unknown; n?: unknown; i?: unknown; f?: unknown };
  if (t.v !== 1 || typeof t.n !== "string" || typeof t.i !== "string" || typeof t.f !== "string") throw invalid();
  if (t.f !== filter) {
    throw new InvalidArgumentError("was issued for a different category or query; use the same filter or start again", "page_token");
  }
  return { name: t.n, id: t.i, filter: t.f };
}
