import { describe, expect, test } from "bun:test";
import { ScrapeReading } from "./metrics.ts";

describe("ScrapeReading", () => {
  test("the gauges of one scrape share one read; a failed read leaves the last good reading", async () => {
    const reading = new ScrapeReading<number>();
    expect(await reading.get()).toBeUndefined();
    let reads = 0;
    let fail = false;
    reading.from(async () => {
      reads++;
      if (fail) throw new Error("the broker is down");
      return reads;
    });
    expect(await Promise.all([reading.get(), reading.get(), reading.get()])).toEqual([1, 1, 1]);
    expect(reads).toBe(1);
    expect(await reading.get()).toBe(2);
    fail = true;
    expect(await reading.get()).toBe(2);
    expect(reads).toBe(3);
  });
});
