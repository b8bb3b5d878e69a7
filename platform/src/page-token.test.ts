import { describe, expect, test } from "bun:test";
import { InvalidArgumentError } from "./errors.ts";
import { isJsonObject, pageTokenCodec } from "./page-token.ts";

interface Cursor {
  name: string;
  at: Date;
}

const codec = pageTokenCodec<Cursor>({
  parse: (c) => {
    if (!isJsonObject(c) || typeof c.name !== "string" || typeof c.at !== "string") return undefined;
    const at = new Date(c.at);
    return Number.isNaN(at.getTime()) ? undefined : { name: c.name, at };
  },
  mismatch: (issuedFor) => `was issued for another filter (${issuedFor === "one" ? "one" : "?"}); use the same filter or start again`,
});
const forged = (o: unknown) => Buffer.from(JSON.stringify(o)).toString("base64url");
const good = { v: 1, l: "", c: { name: "a", at: "2030-01-01T00:00:00.000Z" } };

describe("page tokens", () => {
  test("round-trip the cursor for the same listing, a Date by way of its JSON form", () => {
    const cursor = { name: "Ceramic “Pour” Mug", at: new Date("2026-11-22T04:30:29.123Z") };
    const listing = '["audio","wool"]';
    expect(codec.decode(codec.encode(cursor, listing), listing)).toEqual(cursor);
  });

  test("are URL-safe", () => {
    expect(codec.encode({ name: "??>>", at: new Date(0) }, "")).toMatch(/^[A-Za-z0-9_-]+$/);
  });

  test("reject another listing's token with the codec's message, naming the field", () => {
    const token = codec.encode({ name: "a", at: new Date(0) }, "one");
    expect(() => codec.decode(token, "two")).toThrow(InvalidArgumentError);
    expect(() => codec.decode(token, "two")).toThrow("page_token: was issued for another filter (one); use the same filter or start again");
  });

  test("reject garbage, other versions, a missing listing and cursors the codec does not parse", () => {
    for (const token of [
      "%%%",
      "not a token!",
      "bm90IGpzb24",
      "eyJ2IjoyfQ",
      "a".repeat(2000),
      forged({}),
      forged(null),
      forged([1]),
      forged({ ...good, v: 2 }),
      forged({ ...good, l: undefined }),
      forged({ ...good, l: false }),
      forged({ ...good, c: undefined }),
      forged({ ...good, c: { ...good.c, name: 1 } }),
      forged({ ...good, c: { ...good.c, at: "yesterday" } }),
    ]) {
      const attempt = () => codec.decode(token, "");
      expect(attempt).toThrow(InvalidArgumentError);
      expect(attempt).toThrow("page_token: is not a token this service issued; start again from the first page without one");
    }
    expect(codec.decode(forged(good), "")).toEqual({ name: "a", at: new Date(good.c.at) });
  });

  test("a malformed token is refused as not ours even when its listing differs", () => {
    expect(() => codec.decode(forged({ ...good, l: "one", c: { name: 1 } }), "two")).toThrow("page_token: is not a token this service issued");
  });
});
