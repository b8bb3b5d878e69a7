import { describe, expect, test } from "bun:test";
import { CrashHistory, defaultRestartPolicy, type RestartPolicy } from "./supervisor.ts";

const noJitter: RestartPolicy = { ...defaultRestartPolicy, jitter: 0 };

describe("CrashHistory (the restart policy of the dev runner's supervisor)", () => {
  test("crashes in a row wait 0.5 s, 1 s, 2 s, 4 s… and never more than 15 s", () => {
    const history = new CrashHistory({ ...noJitter, crashLimit: 100 });
    const delays: number[] = [];
    // A crash every 20 s: each one inside the 30 s that would count as having stayed up.
    for (let i = 0; i < 8; i++) {
      const decision = history.record(i * 20_000, 1_000);
      if (!decision.restart) throw new Error(`gave up at crash ${i + 1}`);
      expect(decision.attempt).toBe(i + 1);
      delays.push(decision.delayMs);
    }
    expect(delays).toEqual([500, 1_000, 2_000, 4_000, 8_000, 15_000, 15_000, 15_000]);
  });

  test("a process that stayed up 30 s starts again from the first delay", () => {
    const history = new CrashHistory(noJitter);
    history.record(0, 1_000);
    history.record(1_000, 500);
    expect(history.record(2_000, 400)).toEqual({ restart: true, attempt: 3, delayMs: 2_000 });
    expect(history.record(40_000, 35_000)).toEqual({ restart: true, attempt: 1, delayMs: 500 });
  });

  test("the 5th crash within 2 minutes is a crash loop: given up on, even if each run stayed up", () => {
    const history = new CrashHistory(noJitter);
    for (let i = 0; i < 4; i++) expect(history.record(i * 29_000, 31_000).restart).toBe(true);
    expect(history.record(4 * 29_000, 31_000)).toEqual({ restart: false, crashes: 5 });
  });

  test("crashes older than the window are forgotten: 5 crashes spread over more than 2 minutes are no loop", () => {
    const history = new CrashHistory(noJitter);
    for (let i = 0; i < 10; i++) expect(history.record(i * 31_000, 31_000).restart).toBe(true);
  });

  test("jitter spreads a delay over ±20 % and never past the longest delay", () => {
    const history = (random: number, crashes: number) => {
      const h = new CrashHistory({ ...defaultRestartPolicy, crashLimit: 100 });
      let last = h.record(0, 0, random);
      for (let i = 1; i < crashes; i++) last = h.record(i, 0, random);
      return last.restart ? last.delayMs : undefined;
    };
    expect(history(0, 1)).toBe(400);
    expect(history(0.5, 1)).toBe(500);
    expect(history(0.999_999, 1)).toBe(600);
    expect(history(0, 10)).toBe(12_000);
    expect(history(0.999_999, 10)).toBe(15_000);
  });
});
