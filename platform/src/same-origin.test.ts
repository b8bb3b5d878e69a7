import { describe, expect, test } from "bun:test";
import { sameOriginPath } from "./same-origin.ts";
import { imageUrl, isImageUrl } from "./validation.ts";

// Tabs and line breaks inside a URL are dropped by the URL parser (and so by browsers) before
// the host is read: "/\t/evil.example/" is "//evil.example/", another site.
const offsite = [
  "//evil.example/",
  "/%09/evil.example/",
  "/\t/evil.example/",
  "/\n/evil.example/",
  "/\r/evil.example/",
  "/\\evil.example/",
  "https://evil.example/",
  "javascript:alert(1)",
];

describe("sameOriginPath", () => {
  test("open redirect: a next that leaves the site after tabs or line breaks are stripped is refused", () => {
    for (const next of offsite.filter((u) => !u.includes("%"))) expect(sameOriginPath(next, "https://shop.example")).toBeUndefined();
    expect(sameOriginPath(decodeURIComponent("/%09/evil.example/"), "https://shop.example")).toBeUndefined();
  });

  test("keeps a path on the site, with its query and fragment", () => {
    expect(sameOriginPath("/orders/1?x=2#top", "https://shop.example")).toBe("/orders/1?x=2#top");
    expect(sameOriginPath("https://shop.example/cart", "https://shop.example")).toBe("/cart");
    expect(sameOriginPath("/cart")).toBe("/cart");
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
