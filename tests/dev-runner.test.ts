/**
 * The dev runner refuses to start on a broken setup, says what is wrong and how to fix it,
 * and starts nothing. Every run gets its own ports and instance, so a developer's own
 * `bun run dev` is never disturbed even if a check were to pass by mistake.
 */
import { describe, expect, test } from "bun:test";
import postgres from "postgres";
import { freePort, repoRoot, testEnv, uniqueName } from "@bazaar/testkit/fixtures";
import { pickPortOffset } from "../scripts/dev-instance.ts";

interface RunResult {
  code: number | null;
  output: string;
  ms: number;
  instance: string;
}

/** Runs `bun scripts/dev.ts` with `env` on an isolated instance; kills it if it runs past `timeoutMs`. */
async function runDev(env: Record<string, string>, timeoutMs = 15_000): Promise<RunResult> {
  const instance = uniqueName("devrun").toLowerCase();
  const started = performance.now();
  const proc = Bun.spawn(["bun", "scripts/dev.ts"], {
    cwd: repoRoot,
    env: {
      ...process.env,
      DEV_PORT_OFFSET: String(pickPortOffset()),
      DEV_INSTANCE: instance,
      POSTGRES_URL: testEnv.POSTGRES_URL,
      REDIS_URL: testEnv.REDIS_URL,
      ...env,
    },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  const timer = setTimeout(() => proc.kill("SIGKILL"), timeoutMs);
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  clearTimeout(timer);
  return { code, output: `${stdout}${stderr}`, ms: performance.now() - started, instance };
}

/** The instance's databases that exist (there should be none: nothing was started). */
async function databasesOf(instance: string): Promise<string[]> {
  const sql = postgres(testEnv.POSTGRES_URL, { max: 1, onnotice: () => {} });
  try {
    const rows = await sql<{ datname: string }[]>`select datname from pg_database`;
    return rows.map((r) => r.datname).filter((name) => name.endsWith(`_${instance}`));
  } finally {
    await sql.end({ timeout: 5 });
  }
}

/** What a refused start must look like: no process started, nothing created. */
async function expectNothingStarted(run: RunResult): Promise<void> {
  expect(run.output).toContain("cannot start");
  expect(run.output).not.toContain("service ready");
  expect(run.output).not.toMatch(/^(catalog|bff)\s+│/m);
  expect(run.output).not.toContain("all healthy in");
  expect(await databasesOf(run.instance)).toEqual([]);
}

describe("bun run dev on a broken setup", () => {
  // One dependency down at a time: the run names it, its URL (without a password) and how to
  // start it, and says the other two were fine.
  const unreachable = [
    {
      name: "Redis",
      variable: "REDIS_URL",
      url: (port: number) => `redis://127.0.0.1:${port}`,
      shown: /FAIL\s+Redis\s+redis:\/\/127\.0\.0\.1:\d+/,
      fix: "redis-server",
      others: ["Postgres", "RabbitMQ"],
    },
    {
      name: "RabbitMQ",
      variable: "AMQP_URL",
      url: (port: number) => `amqp://guest:guest@127.0.0.1:${port}`,
      shown: /FAIL\s+RabbitMQ\s+amqp:\/\/guest:\*\*\*@127\.0\.0\.1:\d+/,
      fix: "rabbitmq-server",
      others: ["Postgres", "Redis"],
    },
  ];
  for (const dep of unreachable) {
    test(`${dep.name} not reachable: exits non-zero within seconds, names ${dep.name}, its URL and the fix`, async () => {
      const port = freePort();
      const run = await runDev({ [dep.variable]: dep.url(port) });

      expect(run.code).not.toBe(0);
      expect(run.code).not.toBeNull();
      expect(run.ms).toBeLessThan(8_000);
      expect(run.output).toMatch(dep.shown);
      expect(run.output).toContain(`127.0.0.1:${port}`);
      expect(run.output).not.toContain("guest:guest@"); // a password is never printed
      expect(run.output).toContain(dep.fix);
      expect(run.output).toContain(dep.variable);
      expect(run.output).toMatch(new RegExp(`cannot start: ${dep.name} is not reachable`));
      // The others were checked and are fine.
      for (const other of dep.others) expect(run.output).toMatch(new RegExp(`ok\\s+${other}`));
      await expectNothingStarted(run);
    });
  }

  test("DEV_PORT_OFFSET=abc: exits 1 naming DEV_PORT_OFFSET", async () => {
    const run = await runDev({ DEV_PORT_OFFSET: "abc" });

    expect(run.code).toBe(1);
    expect(run.ms).toBeLessThan(8_000);
    expect(run.output).toContain("DEV_PORT_OFFSET");
    expect(run.output).toContain('"abc"');
    expect(run.output).not.toContain("service ready");
    expect(await databasesOf(run.instance)).toEqual([]);
  });
});
