import { InvalidArgumentError } from "./errors.ts";

/** The envelope format; a token of any other version is refused (the caller starts again). */
const version = 1;
/** Longer tokens are refused unread: no listing's cursor comes near this. */
const maxTokenLength = 1024;
const base64url = /^[A-Za-z0-9_-]+$/;

/** How one listing RPC's page tokens carry its cursor. See {@link pageTokenCodec}. */
export interface PageTokenOptions<C> {
  /**
   * Gets the cursor back from its JSON form (what `JSON.stringify` made of it: a Date is an ISO
   * string), checking every field, or returns undefined if anything is off. Tokens come from
   * clients and can be forged, and the cursor's values end up in a query: trust none of them.
   */
  parse(json: unknown): C | undefined;
  /**
   * Why a token issued for another listing is refused, as the message of an INVALID_ARGUMENT
   * on page_token: say what to ask instead, e.g. "was issued for a different category or
   * query; use the same filter or start again". `issuedFor` is the listing the token names;
   * like all of a token it may be forged, so never quote it as it is.
   */
  mismatch(issuedFor: string): string;
}

/** Encodes and decodes one listing RPC's page tokens. */
export interface PageTokenCodec<C> {
  /** The token of the page after `cursor`, good only for `listing`. */
  encode(cursor: C, listing: string): string;
  /**
   * The cursor a token carries, or INVALID_ARGUMENT on page_token: "is not a token this
   * service issued" for anything malformed, forged or of another version, and the
   * {@link PageTokenOptions.mismatch} message for a token issued for another listing.
   */
  decode(token: string, listing: string): C;
}

/**
 * Page tokens for keyset paging: base64url of a small JSON envelope `{ v, l, c }` holding a
 * format version, the listing the token was issued for and the cursor (where the previous page
 * ended, e.g. the sort key and id of its last row). Clients treat them as opaque.
 *
 * A token is bound to its listing: the filter, scope or flags that decide which rows the
 * listing has, as a string the RPC builds the same way on every call (e.g.
 * `JSON.stringify([categoryId, query])`). A token sent with another listing is refused, rather
 * than quietly paging a different result from a position that means nothing there.
 *
 * Tokens are not signed: a forged one can only name another position in the caller's own
 * listing, which `parse` makes sure is well-formed.
 *
 * @example
 * const pageTokens = pageTokenCodec<OrderCursor>({
 *   parse: (c) => (isOrderCursor(c) ? { createdAt: new Date(c.createdAt), id: c.id } : undefined),
 *   mismatch: () => "was issued to a caller with other rights; start again from the first page",
 * });
 * const cursor = req.pageToken ? pageTokens.decode(req.pageToken, scope) : undefined;
 * const nextPageToken = page.next ? pageTokens.encode(page.next, scope) : "";
 */
export function pageTokenCodec<C>(options: PageTokenOptions<C>): PageTokenCodec<C> {
  const notOurs = () => new InvalidArgumentError("is not a token this service issued; start again from the first page without one", "page_token");
  return {
    encode(cursor, listing) {
      return Buffer.from(JSON.stringify({ v: version, l: listing, c: cursor })).toString("base64url");
    },
    decode(token, listing) {
      if (token.length > maxTokenLength || !base64url.test(token)) throw notOurs();
      let envelope: unknown;
      try {
        envelope = JSON.parse(Buffer.from(token, "base64url").toString("utf8"));
      } catch {
        throw notOurs();
      }
      if (!isJsonObject(envelope) || envelope.v !== version || typeof envelope.l !== "string") throw notOurs();
      const cursor = options.parse(envelope.c);
      if (cursor === undefined) throw notOurs();
      if (envelope.l !== listing) throw new InvalidArgumentError(options.mismatch(envelope.l), "page_token");
      return cursor;
    },
  };
}

/** True for a plain JSON object (not null, not an array): the usual first check of a `parse`. */
export function isJsonObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
