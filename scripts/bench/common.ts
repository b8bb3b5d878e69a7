/**
 * What the benchmark's helper processes share: how a load generator reports its result, how
 * a server says it is ready, and latency percentiles. Every helper is its own process so the
 * load generator and the server under test each get a core.
 */

/** What a load generator prints as its last line: `result {json}`. */
export interface LoadResult {
  /** Which load generator produced it, e.g. "wrk 4.2.0" or "bun fetch". */
  tool: string;
  /** Calls (requests) completed successfully inside the measured window. */
  calls: number;
  /** Calls that failed (or answered a non-2xx status) inside the measured window. */
  errors: number;
  /** The first error seen, if any. */
  firstError?: string;
  /** Length of the measured window, in seconds. */
  durationS: number;
  /** Successful calls per second. */
  rps: number;
  p50Ms: number;
  p99Ms: number;
  meanMs?: number;
  maxMs?: number;
  concurrency: number;
}

/** The line a helper server prints once it accepts connections. */
export const readyLine = (port: number) => `ready ${port}`;

/** Lines a load generator prints when its measured window starts and ends. */
export const phaseLines = { measure: "phase measure", done: "phase done" } as const;

/** Prints the final result line of a load generator. */
export function printResult(result: LoadResult): void {
  process.stdout.write(`result ${JSON.stringify(result)}\n`);
}

/** Parses a `result {json}` line, if it is one. */
export function parseResultLine(line: string): LoadResult | undefined {
  if (!line.startsWith("result ")) return undefined;
  return JSON.parse(line.slice("result ".length)) as LoadResult;
}

/** A growable buffer of latencies in milliseconds, with nearest-rank percentiles. */
export class Latencies {
  private data = new Float64Array(1 << 16);
  private n = 0;

  add(ms: number): void {
    if (this.n === this.data.length) {
      const bigger = new Float64Array(this.data.length * 2);
      bigger.set(this.data);
      this.data = bigger;
    }
    this.data[this.n++] = ms;
  }

  get count(): number {
    return this.n;
  }

  /** p50, p99, mean and max of what was recorded (zeros when empty). */
  summary(): { p50Ms: number; p99Ms: number; meanMs: number; maxMs: number } {
    if (this.n === 0) return { p50Ms: 0, p99Ms: 0, meanMs: 0, maxMs: 0 };
    const sorted = this.data.slice(0, this.n).sort();
    const at = (p: number) => sorted[Math.min(this.n - 1, Math.max(0, Math.ceil((p / 100) * this.n) - 1))] ?? 0;
    let sum = 0;
    for (const v of sorted) sum += v;
    return { p50Ms: round3(at(50)), p99Ms: round3(at(99)), meanMs: round3(sum / this.n), maxMs: round3(sorted[this.n - 1] ?? 0) };
  }
}

export function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}

/** What one load run records: the latency of each measured success, and the measured failures. */
class LoadTally {
  readonly latencies = new Latencies();
  private errors = 0;
  private firstError: string | undefined;

  fail(err: unknown): void {
    this.errors++;
    this.firstError ??= (err as Error).message ?? String(err);
  }

  result(tool: string, durationS: number, concurrency: number): LoadResult {
    const calls = this.latencies.count;
    return {
      tool,
      calls,
      errors: this.errors,
      ...(this.firstError !== undefined ? { firstError: this.firstError } : {}),
      durationS,
      rps: Math.round((calls / durationS) * 10) / 10,
      ...this.latencies.summary(),
      concurrency,
    };
  }
}

/** Reads `--name value` flags; every flag named in `defaults` may be given, others are an error. */
export function flags<T extends Record<string, string>>(defaults: T, argv = process.argv.slice(2)): T {
  const out: Record<string, string> = { ...defaults };
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i]?.replace(/^--/, "");
    const value = argv[i + 1];
    if (!key || value === undefined || !(key in defaults)) {
      process.stderr.write(`unknown or incomplete flag ${argv[i]} (known: ${Object.keys(defaults).join(", ")})\n`);
      process.exit(2);
    }
    out[key] = value;
  }
  return out as T;
}

/** A number flag, or exit with a message. */
export function numberFlag(name: string, value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) {
    process.stderr.write(`--${name} must be a positive number, got ${JSON.stringify(value)}\n`);
    process.exit(2);
  }
  return n;
}

/**
 * Runs `concurrency` closed-loop workers calling `call` for `warmupS + durationS` seconds and
 * records the latency of calls that start and end inside the measured window (the last
 * `durationS` seconds). Prints the phase lines so an observer can sample CPU over the window.
 */
export async function closedLoop(options: {
  tool: string;
  concurrency: number;
  warmupS: number;
  durationS: number;
  call: () => Promise<void>;
}): Promise<LoadResult> {
  const { concurrency, warmupS, durationS, call } = options;
  const tally = new LoadTally();
  const t0 = performance.now();
  const measureFrom = t0 + warmupS * 1000;
  const measureUntil = measureFrom + durationS * 1000;
  const said = new Set<string>();
  const say = (line: string) => {
    if (said.has(line)) return;
    said.add(line);
    process.stdout.write(`${line}\n`);
  };
  const markers = [setTimeout(() => say(phaseLines.measure), warmupS * 1000), setTimeout(() => say(phaseLines.done), (warmupS + durationS) * 1000)];
  const worker = async () => {
    for (;;) {
      const started = performance.now();
      if (started >= measureUntil) return;
      let failed = false;
      try {
        await call();
      } catch (err) {
        failed = true;
        if (started >= measureFrom) tally.fail(err);
        // Do not spin on a dead server.
        await Bun.sleep(5);
      }
      const ended = performance.now();
      if (!failed && started >= measureFrom && ended <= measureUntil) tally.latencies.add(ended - started);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  for (const m of markers) clearTimeout(m);
  say(phaseLines.measure);
  say(phaseLines.done);
  return tally.result(options.tool, durationS, concurrency);
}

/**
 * Starts calls at a fixed rate (an open loop: a slow answer does not delay the next call) for
 * `warmupS + durationS` seconds, and records the latency of calls started inside the measured
 * window from their scheduled start, so queueing delay is counted (no coordinated omission).
 */
export async function openLoop(options: {
  tool: string;
  ratePerS: number;
  warmupS: number;
  durationS: number;
  call: () => Promise<void>;
}): Promise<LoadResult> {
  const { ratePerS, warmupS, durationS, call } = options;
  const tally = new LoadTally();
  const t0 = performance.now();
  const measureFrom = t0 + warmupS * 1000;
  const total = Math.floor((warmupS + durationS) * ratePerS);
  const inFlight: Promise<void>[] = [];
  let measuredSaid = false;
  for (let i = 0; i < total; i++) {
    const scheduled = t0 + (i * 1000) / ratePerS;
    // Bun.sleep can wake a fraction of a millisecond early; a call must not start before its
    // scheduled time, or its latency from that time would come out negative.
    for (let wait = scheduled - performance.now(); wait > 0; wait = scheduled - performance.now()) await Bun.sleep(wait);
    if (!measuredSaid && scheduled >= measureFrom) {
      measuredSaid = true;
      process.stdout.write(`${phaseLines.measure}\n`);
    }
    const measured = scheduled >= measureFrom;
    inFlight.push(
      call().then(
        () => {
          if (measured) tally.latencies.add(performance.now() - scheduled);
        },
        (err: unknown) => {
          if (measured) tally.fail(err);
        },
      ),
    );
  }
  await Promise.all(inFlight);
  process.stdout.write(`${phaseLines.done}\n`);
  return tally.result(options.tool, durationS, 0);
}
