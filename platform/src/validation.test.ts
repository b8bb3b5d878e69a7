import { describe, expect, test } from "bun:test";
import { InvalidArgumentError } from "./errors.ts";
import {
  amountMinor,
  currencyCode,
  defaultPageSize,
  field,
  idempotencyKey,
  imageUrl,
  integer,
  isImageUrl,
  list,
  maxPageSize,
  money,
  nonEmpty,
  pageSize,
  productLines,
  required,
  text,
  uuid,
  validate,
  violation,
} from "./validation.ts";

/** The violations `fn` throws, or a failure if it throws none or something else. */
function violationsOf(fn: () => unknown): { field: string; description: string }[] {
  try {
    fn();
  } catch (err) {
    if (err instanceof InvalidArgumentError) return [...err.violations];
    throw err;
  }
  throw new Error("expected an InvalidArgumentError, but nothing was thrown");
}

const id = "0f8fad5b-d9cb-469f-a165-70867728950e";

describe("validate", () => {
  test("returns every check's normalized value under its key", () => {
    expect(validate({ a: field("a", id.toUpperCase(), uuid("an id")), n: field("n", 3, integer(1, 5)) })).toEqual({ a: id, n: 3 });
  });

  test("collects the violations of every failing check, in order, each under its field", () => {
    const violations = violationsOf(() =>
      validate({
        size: field("page_size", 500, pageSize),
        ok: field("query", "tea", text({ max: 10 })),
        id: field("order_id", "42", uuid("an order id")),
      }),
    );
    expect(violations).toEqual([
      { field: "page_size", description: `must be between 1 and ${maxPageSize} (0 means ${defaultPageSize}), got 500` },
      { field: "order_id", description: 'must be an order id (a UUID), got "42"' },
    ]);
  });

  test("its error's message lists the violations as people read them", () => {
    const err = (() => {
      try {
        validate({ a: field("a", "", nonEmpty), b: field("b.c", 0, integer(1, 2)) });
      } catch (e) {
        return e as InvalidArgumentError;
      }
    })();
    expect(err?.message).toBe("a: is required; b.c: must be between 1 and 2, got 0");
    expect(err?.field).toBe("a");
  });

  test("nested rules report paths under the value's own path; an empty path passes them as they are", () => {
    const line = (l: { qty: number }) => validate({ qty: field("quantity", l.qty, integer(1, 9)) });
    expect(violationsOf(() => validate({ l: field("order.lines", [{ qty: 1 }, { qty: 0 }], list(line, { max: 5, noun: "line" })) }))).toEqual([
      { field: "order.lines[1].quantity", description: "must be between 1 and 9, got 0" },
    ]);
    const ownFields = () => {
      throw new InvalidArgumentError("is required", "card");
    };
    expect(violationsOf(() => validate({ card: field("", undefined, ownFields) }))).toEqual([{ field: "card", description: "is required" }]);
  });

  test("an error that is not a violation is a bug in the rule and passes through", () => {
    const broken = () => {
      throw new TypeError("boom");
    };
    expect(() => validate({ x: field("x", 1, broken) })).toThrow(TypeError);
  });
});

describe("rules", () => {
  test("uuid: required, canonical form, returned lower-case", () => {
    const rule = uuid("a product id");
    expect(rule(id.toUpperCase())).toBe(id);
    expect(violationsOf(() => rule(""))).toEqual([{ field: "", description: "is required" }]);
    expect(violationsOf(() => rule(`${id}x`))[0]?.description).toBe(`must be a product id (a UUID), got ${JSON.stringify(`${id}x`)}`);
    // A long bad value is quoted only in part.
    expect(violationsOf(() => rule("x".repeat(1000)))[0]?.description.length).toBeLessThan(120);
  });

  test("pageSize: 0 means the default; 1 to the maximum pass; below or above do not", () => {
    expect(pageSize(0)).toBe(defaultPageSize);
    expect(pageSize(1)).toBe(1);
    expect(pageSize(maxPageSize)).toBe(maxPageSize);
    expect(violationsOf(() => pageSize(-1))).toHaveLength(1);
    expect(violationsOf(() => pageSize(maxPageSize + 1))).toHaveLength(1);
  });

  test("currencyCode: three upper-case letters", () => {
    expect(currencyCode("EUR")).toBe("EUR");
    for (const bad of ["", "usd", "US", "USDD", "U$D"]) expect(violationsOf(() => currencyCode(bad))[0]?.description).toContain("ISO 4217");
  });

  test("idempotencyKey: 8 to 128 visible ASCII characters", () => {
    expect(idempotencyKey("abcdefgh")).toBe("abcdefgh");
    expect(idempotencyKey("x".repeat(128))).toHaveLength(128);
    expect(violationsOf(() => idempotencyKey("short"))[0]?.description).toContain("got 5");
    expect(violationsOf(() => idempotencyKey("x".repeat(129)))[0]?.description).toContain("got 129");
    expect(violationsOf(() => idempotencyKey("has spaces in it"))[0]?.description).toContain("without spaces");
    expect(violationsOf(() => idempotencyKey("naïve-key-1"))[0]?.description).toContain("ASCII");
  });

  test("integer: whole numbers within the bounds", () => {
    const rule = integer(1, 99);
    expect(rule(1)).toBe(1);
    expect(rule(99)).toBe(99);
    for (const bad of [0, 100, 1.5, Number.NaN]) expect(violationsOf(() => rule(bad))).toHaveLength(1);
  });

  test("amountMinor and money: the amount within the bounds, a currency code; both reported", () => {
    expect(amountMinor(1n, 100n)(100n)).toBe(100);
    expect(violationsOf(() => amountMinor(1n, 100n)(0n))[0]?.description).toBe("must be between 1 and 100 (minor units), got 0");
    expect(money(0n, 10n)({ currencyCode: "USD", amountMinor: 10n })).toEqual({ currencyCode: "USD", amountMinor: 10 });
    expect(violationsOf(() => money(0n, 10n)({ currencyCode: "usd", amountMinor: 11n })).map((v) => v.field)).toEqual(["currency_code", "amount_minor"]);
  });

  test("required: an unset message field is required; a set one goes to the rule", () => {
    const rule = required((m: { n: number }) => m.n);
    expect(rule({ n: 2 })).toBe(2);
    expect(violationsOf(() => rule(undefined))).toEqual([{ field: "", description: "is required" }]);
  });

  test("text: at most max characters, optionally trimmed and required (with advice)", () => {
    expect(text({ max: 3 })("abc")).toBe("abc");
    expect(text({ max: 3 })("")).toBe("");
    expect(text({ max: 3, trim: true })("  ab  ")).toBe("ab");
    expect(violationsOf(() => text({ max: 3 })("abcd"))[0]?.description).toBe("must be at most 3 characters, got 4");
    expect(violationsOf(() => text({ max: 3, trim: true, required: true })("   "))[0]?.description).toBe("is required");
    expect(violationsOf(() => text({ max: 3, required: "say why" })(""))[0]?.description).toBe("is required: say why");
  });

  test("nonEmpty and violation", () => {
    expect(nonEmpty("t")).toBe("t");
    expect(violationsOf(() => nonEmpty(""))).toEqual([{ field: "", description: "is required" }]);
    expect(violationsOf(() => violation("is wrong"))).toEqual([{ field: "", description: "is wrong" }]);
  });
});

describe("list", () => {
  const ids = list(uuid("a product id"), { min: 1, max: 3, noun: "product" });

  test("checks the count, then every element, reporting each bad one by index", () => {
    expect(ids([id.toUpperCase()])).toEqual([id]);
    expect(violationsOf(() => ids([]))).toEqual([{ field: "", description: "must name at least one product" }]);
    expect(violationsOf(() => ids([id, id, id, id]))).toEqual([{ field: "", description: "must name at most 3 products, got 4" }]);
    expect(violationsOf(() => ids(["a", id, "b"])).map((v) => v.field)).toEqual(["[0]", "[2]"]);
  });

  test("a too long list costs one violation, not one per element", () => {
    expect(violationsOf(() => ids(Array.from({ length: 1000 }, () => "bad")))).toHaveLength(1);
  });

  test("unique: a repeated key is a violation at the later element's field, naming the earlier one", () => {
    const lines = list((l: { id: string }) => validate({ id: field("product_id", l.id, uuid("a product id")) }), {
      max: 5,
      noun: "line",
      unique: { key: (l) => l.id, field: "product_id", description: (first, key) => `repeats [${first}] (${key})` },
    });
    expect(violationsOf(() => lines([{ id }, { id: "x" }, { id: id.toUpperCase() }]))).toEqual([
      { field: "[1].product_id", description: 'must be a product id (a UUID), got "x"' },
      { field: "[2].product_id", description: `repeats [0] (${id})` },
    ]);
  });
});

test("productLines: 1 to maxLines lines, each product once (ids lower-cased), 1 to maxQuantity units", () => {
  const rule = productLines({ maxLines: 2, maxQuantity: 5, again: (first, productId) => `repeats line ${first} (${productId})` });
  expect(rule([{ productId: id.toUpperCase(), quantity: 5 }])).toEqual([{ productId: id, quantity: 5 }]);
  expect(violationsOf(() => rule([]))).toEqual([{ field: "", description: "must name at least one line" }]);
  expect(
    violationsOf(() =>
      rule([
        { productId: id, quantity: 0 },
        { productId: id.toUpperCase(), quantity: 6 },
      ]),
    ),
  ).toEqual([
    { field: "[0].quantity", description: "must be between 1 and 5, got 0" },
    { field: "[1].quantity", description: "must be between 1 and 5, got 6" },
  ]);
  expect(
    violationsOf(() =>
      rule([
        { productId: id, quantity: 1 },
        { productId: id.toUpperCase(), quantity: 2 },
      ]),
    ),
  ).toEqual([{ field: "[1].product_id", description: `repeats line 0 (${id})` }]);
});

describe("InvalidArgumentError", () => {
  test("one problem about one field, or about none", () => {
    const one = new InvalidArgumentError("is required", "card");
    expect([one.message, one.field, one.violations]).toEqual(["card: is required", "card", [{ field: "card", description: "is required" }]]);
    const none = new InvalidArgumentError("the request is empty");
    expect([none.message, none.field]).toEqual(["the request is empty", undefined]);
  });

  test("needs at least one violation", () => {
    expect(() => new InvalidArgumentError([])).toThrow("at least one violation");
  });
});

describe("imageUrl", () => {
  test("protocol-relative image URL (//evil.example/x.png) is refused, as are paths that parse to another host", () => {
    for (const url of [
      "//evil.example/x.png",
      "/\\evil.example/x.png",
      "/\t/evil.example/x.png",
      "http://evil.example/x.png",
      "javascript:alert(1)",
      "x.png",
    ]) {
      expect(isImageUrl(url)).toBe(false);
      expect(() => imageUrl(url)).toThrow(/path on this site .* or an https URL/);
    }
  });

  test("allows none, a path on the site and an https URL", () => {
    for (const url of ["", "/images/products/mug.svg", "https://cdn.example/mug.png"]) expect(imageUrl(url)).toBe(url);
    expect(isImageUrl(`/${"a".repeat(500)}`)).toBe(false);
  });
});
