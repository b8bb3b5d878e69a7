import { describe, expect, test } from "bun:test";
import { CircuitBreaker, type CircuitState } from "./circuit-breaker.ts";

/** A breaker on a clock the test moves, recording every change of state. */
function breaker(options: { failureThreshold?: number; coolDownMs?: number } = {}) {
  const clock = { now: 1_000 };
  const changes: [CircuitState, string | undefined][] = [];
  const b = new CircuitBreaker({ ...options, now: () => clock.now, onChange: (state, reason) => changes.push([state, reason]) });
  return { b, clock, changes };
}

const failTimes = (b: CircuitBreaker, n: number) => {
  for (let i = 0; i < n; i++) {
    expect(b.tryAcquire()).toBe(true);
    b.failed(`failure ${i + 1}`);
  }
};

describe("CircuitBreaker", () => {
  test("stays closed through fewer failures in a row than the threshold, and a success ends the streak", () => {
    const { b, changes } = breaker({ failureThreshold: 3 });
    failTimes(b, 2);
    b.succeeded();
    failTimes(b, 2);
    expect(b.state).toBe("closed");
    expect(b.tryAcquire()).toBe(true);
    expect(changes).toEqual([]);
  });

  test("opens on the threshold's failure, saying why, and refuses every call for the cool-down", () => {
    const { b, clock, changes } = breaker({ failureThreshold: 3, coolDownMs: 1_000 });
    failTimes(b, 3);
    expect(changes).toEqual([["open", "failure 3"]]);
    expect(b.state).toBe("open");
    expect(b.tryAcquire()).toBe(false);
    clock.now += 999;
    expect(b.tryAcquire()).toBe(false);
  });

  test("after the cool-down lets exactly one probe through; its success closes the circuit", () => {
    const { b, clock, changes } = breaker({ failureThreshold: 1, coolDownMs: 500 });
    failTimes(b, 1);
    clock.now += 500;
    expect(b.state).toBe("half-open");
    expect(b.tryAcquire()).toBe(true);
    expect(b.tryAcquire()).toBe(false);
    b.succeeded();
    expect(b.state).toBe("closed");
    expect(b.tryAcquire()).toBe(true);
    expect(changes.map(([s]) => s)).toEqual(["open", "half-open", "closed"]);
  });

  test("a failed probe opens the circuit for another full cool-down", () => {
    const { b, clock, changes } = breaker({ failureThreshold: 2, coolDownMs: 500 });
    failTimes(b, 2);
    clock.now += 600;
    expect(b.tryAcquire()).toBe(true);
    b.failed("probe timed out");
    expect(b.state).toBe("open");
    clock.now += 499;
    expect(b.tryAcquire()).toBe(false);
    clock.now += 1;
    expect(b.tryAcquire()).toBe(true);
    expect(changes).toEqual([
      ["open", "failure 2"],
      ["half-open", undefined],
      ["open", "probe timed out"],
      ["half-open", undefined],
    ]);
  });

  test("late outcomes of calls made before it opened do not change an open circuit", () => {
    const { b } = breaker({ failureThreshold: 1, coolDownMs: 500 });
    failTimes(b, 1);
    b.succeeded();
    b.failed("late");
    expect(b.state).toBe("open");
    expect(b.tryAcquire()).toBe(false);
  });

  test("rejects a threshold below one or a cool-down that is not positive", () => {
    expect(() => new CircuitBreaker({ failureThreshold: 0 })).toThrow(/failureThreshold/);
    expect(() => new CircuitBreaker({ coolDownMs: 0 })).toThrow(/coolDownMs/);
  });
});
