import { describe, expect, test } from "bun:test";
import { InvalidArgumentError } from "@bazaar/platform/errors";
import { decodePageToken, encodePageToken } from "./page-token.ts";

describe("page tokens", () => {
  const cursor = { createdAtMs: 1_795_317_373_641, id: "6cf6f00c-86a0-4044-91ee-8941dc0fda34", unreadOnly: true };

  test("round-trip the cursor for the same unread_only, and are URL-safe", () => {
    const token = encodePageToken(cursor);
    expect(token).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(decodePageToken(token, true)).toEqual(cursor);
  });

  test("reject a token of the other listing, naming the field", () => {
    const token = encodePageToken(cursor);
    expect(() => decodePageToken(token, false)).toThrow(InvalidArgumentError);
    expect(() => decodePageToken(token, false)).toThrow("page_token: was issued for a listing with unread_only=true");
  });

  test("reject garbage, wrong versions and wrong field types", () => {
    const forged = (o: unknown) => Buffer.from(JSON.stringify(o)).toString("base64url");
    const good = { v: 1, t: cursor.createdAtMs, i: cursor.id, u: false };
    for (const token of [
      "%%%",
      "bm90IGpzb24",
      forged(null),
      forged([1]),
      forged({ ...good, v: 2 }),
      forged({ ...good, t: "1795317373641" }),
      forged({ ...good, t: 1.5 }),
      forged({ ...good, t: -1 }),
      forged({ ...good, i: "1' or '1'='1" }),
      forged({ ...good, u: "false" }),
      "a".repeat(300),
    ]) {
      expect(() => decodePageToken(token, false)).toThrow("page_token: is not a token this service issued");
    }
  });
});
