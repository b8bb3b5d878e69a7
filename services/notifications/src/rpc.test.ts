import { describe, expect, test } from "bun:test";
import { InvalidArgumentError } from "@bazaar/platform/errors";
import { notificationPageTokens } from "./rpc.ts";

// The envelope (encoding, version, listing) is platform/src/page-token.ts's and tested there;
// these are the notifications cursor's own checks.
describe("ListNotifications page tokens", () => {
  const cursor = { createdAtMs: 1_795_317_373_641, id: "6cf6f00c-86a0-4044-91ee-8941dc0fda34" };

  test("round-trip the cursor for the same unread_only, and are URL-safe", () => {
    const token = notificationPageTokens.encode(cursor, "true");
    expect(token).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(notificationPageTokens.decode(token, "true")).toEqual(cursor);
  });

  test("reject a token of the other listing, naming the field", () => {
    const token = notificationPageTokens.encode(cursor, "true");
    expect(() => notificationPageTokens.decode(token, "false")).toThrow(InvalidArgumentError);
    expect(() => notificationPageTokens.decode(token, "false")).toThrow("page_token: was issued for a listing with unread_only=true");
  });

  test("reject wrong cursor field types and values", () => {
    const forged = (c: unknown) => Buffer.from(JSON.stringify({ v: 1, l: "false", c })).toString("base64url");
    for (const token of [
      forged(null),
      forged([1]),
      forged({ ...cursor, createdAtMs: "1795317373641" }),
      forged({ ...cursor, createdAtMs: 1.5 }),
      forged({ ...cursor, createdAtMs: -1 }),
      forged({ ...cursor, id: "1' or '1'='1" }),
      forged({ id: cursor.id }),
    ]) {
      expect(() => notificationPageTokens.decode(token, "false")).toThrow("page_token: is not a token this service issued");
    }
  });
});
