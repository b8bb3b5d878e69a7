/** Options of {@link eventually}. */
export interface EventuallyOptions {
  /** What is awaited, for the failure message: "the order to be confirmed". */
  what?: string;
  /** How long to keep checking before failing; 15 s unless given (the longest any test waited by default before the kit). */
  timeoutMs?: number;
  /** The pause between two checks; 25 ms unless given. */
  intervalMs?: number;
}

/** What a check resolves to while the awaited state has not been reached yet. */
type NotYet = undefined | false;

/**
 * Runs `check` until it returns a value other than `undefined` or `false`, and resolves with
 * that value. A check that throws has not succeeded yet either; it is run again. After
 * `timeoutMs` it fails with a message naming what was awaited and the last result or error, so a
 * test that times out says what it saw. A check that does not settle is not waited for past the
 * deadline: every wait is bounded.
 *
 * @example
 * const order = await eventually(async () => final((await orders.getOrder({ id })).order), { what: `order ${id} to be final` });
 */
export async function eventually<T>(check: () => T | Promise<T>, options: EventuallyOptions = {}): Promise<Exclude<T, NotYet>> {
  const { what = "the check to pass", timeoutMs = 15_000, intervalMs = 25 } = options;
  if (!(timeoutMs > 0) || !(intervalMs >= 0)) {
    throw new Error(`eventually: timeoutMs must be > 0 and intervalMs >= 0 (got ${timeoutMs} and ${intervalMs})`);
  }
  const started = Date.now();
  const deadline = started + timeoutMs;
  let last: { value: unknown } | { error: unknown } | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const hung = Symbol("hung");
  try {
    for (;;) {
      const attempt = Promise.resolve().then(check);
      // The last attempt is not awaited past the deadline; its late result is ignored.
      attempt.catch(() => {});
      const outcome = await Promise.race([
        attempt.then(
          (value) => ({ value }),
          (error: unknown) => ({ error }),
        ),
        new Promise<typeof hung>((resolve) => {
          timer = setTimeout(() => resolve(hung), Math.max(0, deadline - Date.now()));
        }),
      ]);
      clearTimeout(timer);
      if (outcome === hung) {
        throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}: the last check had not settled${describe(last, "; before it, ")}`);
      }
      if ("value" in outcome && outcome.value !== undefined && outcome.value !== false) return outcome.value as Exclude<T, NotYet>;
      last = outcome;
      if (Date.now() + intervalMs >= deadline) {
        throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${describe(last, "; ")}`);
      }
      await Bun.sleep(intervalMs);
    }
  } finally {
    clearTimeout(timer);
  }
}

function describe(last: { value: unknown } | { error: unknown } | undefined, lead: string): string {
  if (!last) return "";
  if ("error" in last) return `${lead}the last check threw: ${last.error instanceof Error ? last.error.message : String(last.error)}`;
  return `${lead}the last check returned ${Bun.inspect(last.value)}`;
}
