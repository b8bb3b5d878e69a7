import { describe, expect, test } from "bun:test";
import { Hono } from "hono";
import { ClientOfflineError } from "redis";
import { configureLogging } from "@bazaar/platform/log";
import { errorResponse } from "./errors.ts";

configureLogging("bff-test", "error");

function appThrowing(err: Error): Hono {
  const app = new Hono();
  app.get("/", () => {
    throw err;
  });
  app.onError(errorResponse);
  return app;
}

describe("errorResponse", () => {
  test("the BFF's own Redis out of reach is a 503 unavailable, not a 500", async () => {
    const res = await appThrowing(new ClientOfflineError()).request("/");
    expect(res.status).toBe(503);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("unavailable");
  });

  test("a bug is a 500 internal with no details", async () => {
    const res = await appThrowing(new TypeError("x is undefined")).request("/");
    expect(res.status).toBe(500);
    expect(await res.json()).toEqual({ error: { code: "internal", message: "Something went wrong on our side. Please try again." } });
  });
});
