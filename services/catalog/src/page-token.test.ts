import { describe, expect, test } from "bun:test";
import { InvalidArgumentError } from "@bazaar/platform/errors";
import { decodePageToken, encodePageToken } from "./page-token.ts";

describe("page tokens", () => {
  test("round-trip the cursor for the same filter", () => {
    const cursor = { name: "Ceramic “Pour” Mug", id: "6cf6f00c-86a0-4044-91ee-8941dc0fda34", filter: '["audio","wool"]' };
    expect(decodePageToken(encodePageToken(cursor), cursor.filter)).toEqual(cursor);
  });

  test("are URL-safe", () => {
    expect(encodePageToken({ name: "??>>", id: "x", filter: "" })).toMatch(/^[A-Za-z0-9_-]+$/);
  });

  test("reject another filter's token, naming the field", () => {
    const token = encodePageToken({ name: "a", id: "b", filter: "one" });
    expect(() => decodePageToken(token, "two")).toThrow(InvalidArgumentError);
    expect(() => decodePageToken(token, "two")).toThrow("page_token: was issued for a different category or query");
  });

  test("reject garbage, wrong versions and wrong field types", () => {
    const forged = (o: unknown) => Buffer.from(JSON.stringify(o)).toString("base64url");
    for (const token of ["%%%", forged({ v: 2, n: "a", i: "b", f: "" }), forged({ v: 1, n: 1, i: "b", f: "" }), forged([1]), "bm90IGpzb24"]) {
      expect(() => decodePageToken(token, "")).toThrow("page_token: is not a token this service issued");
    }
  });
});
