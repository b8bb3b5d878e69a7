import { describe, expect, test } from "bun:test";
import { browserAddress, trustedProxies } from "./edge.ts";

describe("browserAddress", () => {
  const gateway = trustedProxies(["10.0.0.0/8", "::1"]);

  test("behind a trusted proxy, the address it appended to X-Forwarded-For", () => {
    expect(browserAddress("10.0.0.5", "203.0.113.7", gateway)).toBe("203.0.113.7");
    expect(browserAddress("::1", "10.0.0.9, 203.0.113.7", gateway)).toBe("203.0.113.7");
  });

  test("a client's own X-Forwarded-For entries, left of the first untrusted address, are not believed", () => {
    expect(browserAddress("10.0.0.5", "198.51.100.1, 203.0.113.7", gateway)).toBe("203.0.113.7");
    expect(browserAddress("203.0.113.7", "198.51.100.1", gateway)).toBe("203.0.113.7");
  });

  test("a malformed entry stops at the proxy that passed it; no peer is no address", () => {
    expect(browserAddress("10.0.0.5", "evil, not-an-ip", gateway)).toBe("10.0.0.5");
    expect(browserAddress(undefined, "203.0.113.7", gateway)).toBeUndefined();
  });
});
