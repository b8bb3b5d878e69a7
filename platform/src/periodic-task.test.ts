import { expect, test } from "bun:test";
import { eventually } from "@bazaar/testkit/eventually";
import { configureLogging } from "./log.ts";
import { PeriodicTask } from "./periodic-task.ts";

configureLogging("periodic-task-test", "error");

test("a run asked for while one is in progress joins it instead of starting a second", async () => {
  let runs = 0;
  let release = () => {};
  const task = new PeriodicTask("test job", 60_000, async () => {
    runs++;
    await new Promise<void>((resolve) => {
      release = resolve;
    });
    return 7;
  });
  const first = task.runNow();
  const second = task.runNow();
  release();
  expect(await Promise.all([first, second])).toEqual([7, 7]);
  expect(runs).toBe(1);
});

test("a failed run resolves 0 and the next run goes ahead", async () => {
  let calls = 0;
  const task = new PeriodicTask("test job", 60_000, async () => {
    calls++;
    if (calls === 1) throw new Error("the database is down");
    return 3;
  });
  expect(await task.runNow()).toBe(0);
  expect(await task.runNow()).toBe(3);
});

test("start runs at once and then every interval; stop waits for the run in progress and ends the runs", async () => {
  let runs = 0;
  const task = new PeriodicTask("test job", 20, async () => {
    runs++;
    await Bun.sleep(5);
    return 1;
  }).start();
  await eventually(() => runs >= 3, { what: "three runs", timeoutMs: 2_000 });
  await task.stop();
  expect(task.stopped).toBe(true);
  const after = runs;
  await Bun.sleep(60);
  expect(runs).toBe(after);
  expect(await task.runNow()).toBe(0);
});
