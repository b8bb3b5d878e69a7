/**
 * Supervision of a set of child processes, as an orchestrator's restart policy does it (the dev
 * runner's; compose and Kubernetes have their own): a process that exits unexpectedly is
 * restarted after an exponential, jittered backoff and awaited healthy again, while the others
 * keep serving; a process that keeps crashing is given up on.
 */
import { type ChildProcess, tail, waitForHealthy } from "./processes.ts";
import { backoffDelayMs } from "./backoff.ts";

/** When and how often a crashed process is restarted. */
export interface RestartPolicy {
  /** The wait before the first restart after a crash; it doubles with each crash in a row. */
  firstDelayMs: number;
  /** The longest wait between two restarts. */
  maxDelayMs: number;
  /**
   * Each wait is scaled by a random factor in [1 - jitter, 1 + jitter] (then capped at
   * maxDelayMs), so processes that crashed together do not all restart at the same instant.
   */
  jitter: number;
  /** A process that stayed up this long before it exited starts again from firstDelayMs. */
  stableAfterMs: number;
  /** This many crashes within crashWindowMs is a crash loop: the process is given up on. */
  crashLimit: number;
  crashWindowMs: number;
}

/** 0.5 s doubling to 15 s (±20 %), reset after 30 s up; 5 crashes in 2 minutes is a loop. */
export const defaultRestartPolicy: RestartPolicy = {
  firstDelayMs: 500,
  maxDelayMs: 15_000,
  jitter: 0.2,
  stableAfterMs: 30_000,
  crashLimit: 5,
  crashWindowMs: 120_000,
};

/** What {@link CrashHistory.record} decided about one crash. */
export type CrashDecision =
  /** Restart after `delayMs`; `attempt` counts the restarts since the process last stayed up. */
  | { restart: true; attempt: number; delayMs: number }
  /** A crash loop: `crashes` crashes within the policy's window. */
  | { restart: false; crashes: number };

/**
 * The crashes of one process, and the decision each one calls for under a {@link RestartPolicy}.
 * Time and randomness are arguments, so the policy is checked without waiting for either.
 */
export class CrashHistory {
  private crashes: number[] = [];
  private attempt = 0;

  constructor(private readonly policy: RestartPolicy = defaultRestartPolicy) {}

  /**
   * Records a crash at `now` (ms) of a process that had been up `uptimeMs`; `random` in [0, 1)
   * picks the jitter.
   */
  record(now: number, uptimeMs: number, random = Math.random()): CrashDecision {
    const { firstDelayMs, maxDelayMs, jitter, stableAfterMs, crashLimit, crashWindowMs } = this.policy;
    this.crashes = [...this.crashes.filter((at) => now - at < crashWindowMs), now];
    if (this.crashes.length >= crashLimit) return { restart: false, crashes: this.crashes.length };
    this.attempt = uptimeMs >= stableAfterMs ? 1 : this.attempt + 1;
    const delayMs = Math.round(Math.min(maxDelayMs, backoffDelayMs({ initialDelayMs: firstDelayMs, maxDelayMs, jitter }, this.attempt, random)));
    return { restart: true, attempt: this.attempt, delayMs };
  }
}

/** One process a {@link Supervisor} runs. */
export interface SupervisedProcess {
  name: string;
  /** Starts the process (again): called once at start and once per restart. */
  start: () => ChildProcess;
  /** Answers 200 once the process is ready (its /healthz). */
  healthUrl: string;
}

/** How a {@link Supervisor} reports, and what it does when it gives up. */
export interface SupervisorOptions {
  policy?: RestartPolicy;
  /** How long a process may take to become healthy, at start and after each restart. */
  healthTimeoutMs: number;
  /**
   * Receives every line the supervisor has to say (a crash, a restart, healthy again, giving up);
   * `lines` are the process's own last lines that go with it, as it wrote them.
   */
  report: (line: string, severity: "info" | "warn" | "error", lines?: string[]) => void;
  /** Called when a process crash-loops; that process is not restarted again (the others still are). */
  onGiveUp: (name: string) => void;
}

/** How one process ended, for a person: "code 1" or "signal SIGKILL". */
export function describeExit(child: ChildProcess): string {
  return child.proc.signalCode ? `signal ${child.proc.signalCode}` : `code ${child.proc.exitCode}`;
}

/** How many of its last lines are shown when a process is given up on. */
const lastLinesShown = 20;

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

interface Slot {
  spec: SupervisedProcess;
  child: ChildProcess;
  startedAt: number;
  /** Once a process has been healthy, an exit is a crash to restart; before, it is a failed start. */
  supervised: boolean;
  history: CrashHistory;
  /** The pending restart while the process waits out its backoff. */
  timer?: ReturnType<typeof setTimeout>;
}

/**
 * Runs processes and keeps them running. {@link start} starts every one and waits until all are
 * healthy; a process that exits before it was ever healthy fails the start (a setup problem that
 * no restart fixes, reported at once). From its first healthy moment, a process that exits for
 * any reason other than {@link stop} — a crash, a signal, even code 0 — is restarted under the
 * {@link RestartPolicy}, each step reported; after a crash loop the supervisor reports the
 * process's last lines and calls `onGiveUp`. {@link stop} cancels every pending restart.
 */
export class Supervisor {
  private readonly slots: Slot[];
  private readonly policy: RestartPolicy;
  private stopping = false;

  constructor(
    processes: readonly SupervisedProcess[],
    private readonly options: SupervisorOptions,
  ) {
    this.policy = options.policy ?? defaultRestartPolicy;
    this.slots = processes.map((spec) => ({ spec, child: spec.start(), startedAt: 0, supervised: false, history: new CrashHistory(this.policy) }));
    for (const slot of this.slots) this.watch(slot);
  }

  /**
   * Waits until every process is healthy. Rejects with the first that exits before it is, or is
   * not healthy within the timeout (its last lines in the message); the caller stops the rest.
   */
  async start(): Promise<void> {
    await Promise.all(
      this.slots.map(async (slot) => {
        await waitForHealthy(slot.child, slot.spec.healthUrl, this.options.healthTimeoutMs);
        slot.supervised = true;
      }),
    );
  }

  /**
   * Stops every process: no restart happens from here on, and a process waiting out its backoff
   * stays down. Sends SIGTERM to every running process and resolves with each one's exit code,
   * `undefined` for one that was not running.
   */
  async stop(): Promise<{ name: string; code: number | null | undefined }[]> {
    this.stopping = true;
    for (const slot of this.slots) clearTimeout(slot.timer);
    // A process waiting out its backoff (or given up on) has exited already.
    return Promise.all(
      this.slots.map(async (slot) => ({ name: slot.spec.name, code: this.hasExited(slot.child) ? undefined : await slot.child.stop("SIGTERM") })),
    );
  }

  private hasExited(child: ChildProcess): boolean {
    return child.proc.exitCode !== null || child.proc.signalCode !== null;
  }

  private watch(slot: Slot): void {
    slot.startedAt = performance.now();
    const child = slot.child;
    // Once its output is read to the end: giving up shows its last lines.
    void child.finished.then(() => this.exited(slot, child));
  }

  private exited(slot: Slot, child: ChildProcess): void {
    if (this.stopping || !slot.supervised) return;
    const { name } = slot.spec;
    const exitedAt = performance.now();
    const uptimeMs = exitedAt - slot.startedAt;
    const decision = slot.history.record(exitedAt, uptimeMs);
    if (!decision.restart) {
      this.options.report(
        `${name} crashed ${decision.crashes} times within ${Math.round(this.policy.crashWindowMs / 1000)} s (the last: ${describeExit(child)}); giving up on it, ` +
          "it is not restarted again. Its last lines, which should say why:",
        "error",
        tail(child.output(), lastLinesShown).split("\n"),
      );
      this.options.onGiveUp(name);
      return;
    }
    this.options.report(
      `${name} exited unexpectedly (${describeExit(child)}) after ${seconds(uptimeMs)} up; restart ${decision.attempt} in ${seconds(decision.delayMs)}`,
      "warn",
    );
    slot.timer = setTimeout(() => {
      slot.timer = undefined;
      if (!this.stopping) void this.restart(slot, decision.attempt, exitedAt);
    }, decision.delayMs);
  }

  private async restart(slot: Slot, attempt: number, exitedAt: number): Promise<void> {
    const { name, healthUrl } = slot.spec;
    slot.child = slot.spec.start();
    this.watch(slot);
    const child = slot.child;
    this.options.report(`restarting ${name} (restart ${attempt}, pid ${child.proc.pid})`, "info");
    try {
      await waitForHealthy(child, healthUrl, this.options.healthTimeoutMs);
      if (!this.stopping)
        this.options.report(`${name} is healthy again (restart ${attempt}), ${seconds(performance.now() - exitedAt)} after it exited`, "info");
    } catch {
      // One that exited is handled as a crash by exited(); one still running but not healthy is
      // stuck starting: it is stopped, and that exit counts as a crash too.
      if (this.stopping || this.hasExited(child)) return;
      this.options.report(`${name} was not healthy within ${seconds(this.options.healthTimeoutMs)} of its restart; stopping it`, "warn");
      await child.stop("SIGKILL");
    }
  }
}
