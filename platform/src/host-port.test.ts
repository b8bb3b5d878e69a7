import { describe, expect, test } from "bun:test";
import { joinHostPort } from "./host-port.ts";

describe("joinHostPort", () => {
  test("brackets an IPv6 address, and only that", () => {
    expect(joinHostPort("127.0.0.1", 50051)).toBe("127.0.0.1:50051");
    expect(joinHostPort("catalog", "50052")).toBe("catalog:50052");
    expect(joinHostPort("::1", 9101)).toBe("[::1]:9101");
    expect(joinHostPort("fd00::5", 80)).toBe("[fd00::5]:80");
  });
});
