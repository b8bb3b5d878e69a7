import { Gauge } from "prom-client";
import { log } from "./log.ts";
import { registry } from "./metrics.ts";
import { PeriodicTask } from "./periodic-task.ts";
import { withinTime } from "./time-limit.ts";

/** Whether each dependency answered its last check, 1 or 0. */
const dependencyUp = new Gauge({
  name: "bazaar_dependency_up",
  help: "Whether a dependency (postgres, redis) answered the process's last readiness check: 1 up, 0 down.",
  labelNames: ["dependency"] as const,
  registers: [registry],
});

/** A dependency's state as the last check found it. */
export interface DependencyState {
  up: boolean;
  /** Without it the process cannot serve (NOT_SERVING while it is down); else it degrades (a cache). */
  required: boolean;
  /** Why the last check failed. */
  error?: string;
}

/** Options of {@link Readiness}. */
export interface ReadinessOptions {
  /** How often every dependency is checked. */
  intervalMs?: number;
  /** How long one check may take before it counts as down. */
  timeoutMs?: number;
}

interface Dependency extends DependencyState {
  check: () => Promise<unknown>;
}

/**
 * Readiness, apart from liveness: the process works (it answers at all) versus its
 * dependencies answer. Each dependency is checked cheaply in the background (a `select 1`, a
 * PING) every second, and health reads the cached result, so probes never load Postgres or
 * Redis and never wait on them. While a required dependency is down the process reports
 * NOT_SERVING (gRPC health, /readyz and /healthz), so load balancers and the gateway send
 * traffic elsewhere; it turns SERVING again by itself once the dependency answers.
 */
export class Readiness {
  private readonly dependencies = new Map<string, Dependency>();
  private readonly listeners: ((ready: boolean) => void)[] = [];
  private readonly task: PeriodicTask;
  private readonly timeoutMs: number;
  private wasReady = true;

  constructor(options: ReadinessOptions = {}) {
    this.timeoutMs = options.timeoutMs ?? 1_000;
    this.task = new PeriodicTask("readiness check", options.intervalMs ?? 1_000, () => this.checkAll());
  }

  /** Adds a dependency, up (it was just connected); `required: false` for one the process can do without. */
  add(name: string, check: () => Promise<unknown>, options: { required?: boolean } = {}): void {
    this.dependencies.set(name, { check, up: true, required: options.required ?? true });
    dependencyUp.set({ dependency: name }, 1);
  }

  /** True while every required dependency answered its last check. */
  get ready(): boolean {
    for (const d of this.dependencies.values()) if (d.required && !d.up) return false;
    return true;
  }

  /** Each dependency's last state, by name. */
  readonly report = (): Record<string, DependencyState> =>
    Object.fromEntries([...this.dependencies].map(([name, { up, required, error }]) => [name, error ? { up, required, error } : { up, required }]));

  /** Calls `listener` with the new readiness whenever it changes. */
  onChange(listener: (ready: boolean) => void): void {
    this.listeners.push(listener);
  }

  /** Checks in the background from now on. */
  start(): this {
    this.task.start();
    return this;
  }

  stop(): Promise<void> {
    return this.task.stop();
  }

  /** Checks every dependency now (or joins the check in progress). */
  checkNow(): Promise<number> {
    return this.task.runNow();
  }

  private async checkAll(): Promise<number> {
    await Promise.all([...this.dependencies].map(([name, d]) => this.checkOne(name, d)));
    const ready = this.ready;
    if (ready !== this.wasReady) {
      this.wasReady = ready;
      for (const listener of this.listeners) listener(ready);
    }
    return this.dependencies.size;
  }

  private async checkOne(name: string, d: Dependency): Promise<void> {
    try {
      await withinTime(d.check(), this.timeoutMs, () => new Error(`no answer within ${this.timeoutMs} ms`));
      if (!d.up) log.info(`${name} answers again${d.required ? "; serving" : ""}`, { dependency: name });
      d.up = true;
      d.error = undefined;
    } catch (err) {
      const error = (err as Error).message || String(err);
      if (d.up) log.warn(`${name} is down${d.required ? "; reporting NOT_SERVING until it answers" : "; carrying on without it"}`, { dependency: name, error });
      d.up = false;
      d.error = error;
    } finally {
      dependencyUp.set({ dependency: name }, d.up ? 1 : 0);
    }
  }
}
