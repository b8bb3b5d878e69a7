import { describe, expect, test } from "bun:test";
import { repoRoot } from "@bazaar/testkit/fixtures";

async function startWith(env: Record<string, string>) {
  const proc = Bun.spawn(["bun", "services/catalog/src/main.ts"], {
    cwd: repoRoot,
    env: { ...process.env, ...env },
    stdout: "pipe",
    stderr: "pipe",
  });
  const [code, stderr] = await Promise.all([proc.exited, new Response(proc.stderr).text()]);
  return { code, stderr };
}

describe("configuration", () => {
  test("a bad variable stops the process at once with a message naming it", async () => {
    const { code, stderr } = await startWith({ GRPC_PORT: "not-a-port", LOG_LEVEL: "loud" });
    expect(code).toBe(1);
    expect(stderr).toContain("invalid environment variable GRPC_PORT");
    expect(stderr).toContain('got "not-a-port"');
    expect(stderr).toContain("invalid environment variable LOG_LEVEL");
  });

  test("an unreachable database stops the service with a message naming the server", async () => {
    const { code, stderr } = await startWith({ DATABASE_URL: "postgres://postgres@127.0.0.1:1/bazaar_catalog", GRPC_PORT: "0", HTTP_PORT: "0" });
    expect(code).toBe(1);
    expect(stderr).toContain("cannot open the database");
    expect(stderr).toContain("127.0.0.1:1");
  });
});

describe("development defaults outside development", () => {
  async function run(entry: string, env: Record<string, string>) {
    const proc = Bun.spawn(["bun", entry], { cwd: repoRoot, env: { ...process.env, ...env }, stdout: "pipe", stderr: "pipe" });
    const timer = setTimeout(() => proc.kill("SIGKILL"), 20_000);
    const [code, stderr] = await Promise.all([proc.exited, new Response(proc.stderr).text()]);
    clearTimeout(timer);
    return { code, stderr };
  }

  test("a service in production mode with a development-default secret refuses to start, naming each such variable", async () => {
    const production = { NODE_ENV: "production", DEPLOYMENT_MODE: "" };
    const orders = await run("services/orders/src/main.ts", production);
    expect(orders.code).toBe(1);
    expect(orders.stderr).toContain("invalid environment variable OAUTH_CLIENT_SECRET: it is not set, so it would be its development default");
    expect(orders.stderr).toContain("bun run oauth:client orders");
    expect(orders.stderr).not.toContain("DEPLOYMENT_MODE:");
    const identity = await run("services/identity/src/main.ts", production);
    expect(identity.code).toBe(1);
    expect(identity.stderr).toContain("invalid environment variable OAUTH_CLIENTS");
    const payments = await run("services/payments/src/main.ts", { ...production, REQUEST_HASH_SECRET: "bazaar-dev-payments-request-hash-change-me" });
    expect(payments.code).toBe(1);
    expect(payments.stderr).toContain("invalid environment variable REQUEST_HASH_SECRET: it is the development default");
    const bff = await run("bff/src/main.ts", production);
    expect(bff.code).toBe(1);
    expect(bff.stderr).toContain("invalid environment variable OAUTH_CLIENT_SECRET");
  }, 60_000);

  test("a secret that fails its check is reported without its value", async () => {
    const { code, stderr } = await run("services/payments/src/main.ts", { REQUEST_HASH_SECRET: "short-secret" });
    expect(code).toBe(1);
    expect(stderr).toContain("invalid environment variable REQUEST_HASH_SECRET: must be at least 16 characters (got 12 characters, not shown)");
    expect(stderr).not.toContain("short-secret");
  }, 30_000);
});
