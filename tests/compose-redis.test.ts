import { describe, expect, test } from "bun:test";
import { parse } from "yaml";
import { repoRoot } from "@bazaar/testkit/fixtures";
import { persistentRedisArgs } from "@bazaar/testkit/private-servers";

// compose.yaml's Redis keeps carts and sessions across a restart: a static check of its flags,
// light enough for every run (tests/containers.test.ts runs the stack for real, in Docker).
// The same flags run for real in tests/redis-persistence.test.ts (PrivateRedis).

/** The parts of compose.yaml this test reads. */
interface ComposeFile {
  services: { redis: { command: string[]; volumes?: string[]; read_only?: boolean } };
  volumes: Record<string, unknown>;
}
const compose = parse(await Bun.file(`${repoRoot}/compose.yaml`).text(), { merge: true }) as ComposeFile;
const redis = compose.services.redis;

/** The value after `--flag` in redis-server's command line. */
const flag = (name: string): string | undefined => {
  const args = redis.command;
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
};

describe("compose.yaml's Redis", () => {
  test("appends every write to a log on a named volume, fsynced once a second, and takes no RDB snapshots", () => {
    expect(redis.command[0]).toBe("redis-server");
    expect(flag("appendonly")).toBe("yes");
    expect(flag("appendfsync")).toBe("everysec");
    expect(flag("save")).toBe("");
    expect(redis.volumes).toEqual(["redis-data:/data"]);
    expect(Object.keys(compose.volumes)).toContain("redis-data");
    // The root stays read-only: only the volume is written.
    expect(redis.read_only).toBe(true);
  });

  test("never evicts a key under memory pressure (carts and sessions have TTLs too, so a volatile policy could drop them)", () => {
    expect(flag("maxmemory-policy")).toBe("noeviction");
    expect(flag("maxmemory")).toMatch(/^\d+mb$/);
  });

  test("runs with the same persistence flags as the test kit's persistent PrivateRedis", () => {
    const args = persistentRedisArgs;
    for (let i = 0; i < args.length; i += 2) expect(flag(args[i]!.slice(2)), args[i]).toBe(args[i + 1]);
  });
});
