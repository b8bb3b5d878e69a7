import { describe, expect, test } from "bun:test";
import { eventually } from "./eventually.ts";

describe("eventually", () => {
  test("resolves with the first value that is neither undefined nor false", async () => {
    let calls = 0;
    const value = await eventually(() => {
      calls += 1;
      if (calls === 1) return undefined;
      if (calls === 2) return false;
      return { calls };
    });
    expect(value).toEqual({ calls: 3 });
  });

  test("keeps checking while the check throws, and resolves once it passes", async () => {
    let calls = 0;
    const value = await eventually(async () => {
      calls += 1;
      if (calls < 3) throw new Error("not yet");
      return "ready";
    });
    expect(value).toBe("ready");
    expect(calls).toBe(3);
  });

  test("accepts falsy values other than false and undefined as results", async () => {
    expect(await eventually(() => 0)).toBe(0);
    expect(await eventually(() => "")).toBe("");
    expect(await eventually(() => null)).toBeNull();
  });

  test("fails after the timeout, naming what was awaited and the last result", async () => {
    const started = Date.now();
    let depth = 0;
    const error = await eventually(() => ++depth > 1_000_000, { what: "the queue to fill", timeoutMs: 150 }).catch((err: Error) => err);
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toBe("timed out after 150 ms waiting for the queue to fill; the last check returned false");
  });

  test("fails after the timeout with the last error of a check that throws", async () => {
    let calls = 0;
    const error = await eventually(
      () => {
        calls += 1;
        throw new Error(`connection refused (${calls})`);
      },
      { what: "the server", timeoutMs: 100, intervalMs: 10 },
    ).catch((err: Error) => err);
    expect((error as Error).message).toBe(`timed out after 100 ms waiting for the server; the last check threw: connection refused (${calls})`);
    expect(calls).toBeGreaterThan(1);
  });

  test("does not wait past the deadline for a check that never settles", async () => {
    const started = Date.now();
    const error = await eventually(() => new Promise<never>(() => {}), { what: "a hung call", timeoutMs: 100 }).catch((err: Error) => err);
    expect(Date.now() - started).toBeLessThan(1_000);
    expect((error as Error).message).toBe("timed out after 100 ms waiting for a hung call: the last check had not settled");
  });

  test("refuses a timeout or interval that cannot bound the wait", async () => {
    for (const options of [{ timeoutMs: 0 }, { timeoutMs: Number.NaN }, { intervalMs: -1 }]) {
      await expect(eventually(() => true, options)).rejects.toThrow("eventually: timeoutMs must be > 0 and intervalMs >= 0");
    }
  });
});
