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
