import { describe, expect, test } from "bun:test";
import { z } from "zod";
import { commonEnv, deploymentMode, developmentClientSecret, developmentDefaultsLeft, hmacKeyVar, oauthClientEnv } from "./env.ts";

const schema = z.object({ ...commonEnv, ...oauthClientEnv("orders"), REQUEST_HASH_SECRET: hmacKeyVar("bazaar-dev-orders-request-hash-change-me") });
const realValues = { OAUTH_CLIENT_SECRET: "a-secret-of-the-operators-own", REQUEST_HASH_SECRET: "another-secret-of-their-own" };

describe("deployment mode", () => {
  test("follows NODE_ENV unless DEPLOYMENT_MODE says otherwise; a value it does not know counts as production", () => {
    expect(deploymentMode({})).toBe("development");
    expect(deploymentMode({ NODE_ENV: "production" })).toBe("production");
    expect(deploymentMode({ NODE_ENV: "test" })).toBe("development");
    expect(deploymentMode({ NODE_ENV: "production", DEPLOYMENT_MODE: "development" })).toBe("development");
    expect(deploymentMode({ DEPLOYMENT_MODE: "production" })).toBe("production");
    expect(deploymentMode({ DEPLOYMENT_MODE: "dev" })).toBe("production");
    expect(z.object(commonEnv).safeParse({ DEPLOYMENT_MODE: "dev" }).success).toBe(false);
  });
});

describe("secrets with development defaults", () => {
  test("in production, each one left unset or at its default is named with how to set a real value", () => {
    const lines = developmentDefaultsLeft(schema, { NODE_ENV: "production", REQUEST_HASH_SECRET: "bazaar-dev-orders-request-hash-change-me" });
    expect(lines).toEqual([
      "invalid environment variable OAUTH_CLIENT_SECRET: it is not set, so it would be its development default, which is public, and this process runs in production (NODE_ENV=production); set a value of your own: bun run oauth:client orders mints a secret and the hash identity needs",
      "invalid environment variable REQUEST_HASH_SECRET: it is the development default, which is public, and this process runs in production (NODE_ENV=production); set a value of your own: a long random value, e.g. `openssl rand -base64 32`",
    ]);
  });

  test("in production, values of the operator's own pass; in development, the defaults do", () => {
    expect(developmentDefaultsLeft(schema, { NODE_ENV: "production", ...realValues })).toEqual([]);
    expect(developmentDefaultsLeft(schema, {})).toEqual([]);
    expect(developmentDefaultsLeft(schema, { NODE_ENV: "production", DEPLOYMENT_MODE: "development" })).toEqual([]);
    expect(schema.parse({}).OAUTH_CLIENT_SECRET).toBe(developmentClientSecret("orders"));
  });
});
