import type { Subprocess } from "bun";

/** A child process started by {@link startProcess}, with its output kept for inspection. */
export interface ChildProcess {
  readonly name: string;
  readonly proc: Subprocess<"ignore", "pipe", "pipe">;
  /** Everything the process wrote so far (stdout and stderr, interleaved by line). */
  output(): string;
  /**
   * Resolves once the process has exited and its last lines have been read: on `proc.exited`
   * they may still be in the pipe. (At most a second after the exit, should anything else hold
   * the pipe open.)
   */
  readonly finished: Promise<void>;
  /** Sends a signal and waits for the process to exit; returns its exit code. */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<number | null>;
}

/** Options of {@link startProcess}. */
export interface StartProcessOptions {
  /** A label for the output. */
  name: string;
  /** The command, e.g. ["bun", "services/catalog/src/main.ts"]. */
  cmd: string[];
  /** Working directory. */
  cwd?: string;
  /** The complete environment of the child. */
  env: Record<string, string | undefined>;
  /** Called with each line the process writes. */
  onLine?: (line: string, stream: "stdout" | "stderr") => void;
}

async function pump(stream: ReadableStream<Uint8Array>, onLine: (line: string) => void): Promise<void> {
  const decoder = new TextDecoder();
  let buffered = "";
  const reader = stream.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    buffered += decoder.decode(value, { stream: true });
    for (let nl = buffered.indexOf("\n"); nl >= 0; nl = buffered.indexOf("\n")) {
      onLine(buffered.slice(0, nl));
      buffered = buffered.slice(nl + 1);
    }
  }
  if (buffered) onLine(buffered);
}

// Children still running when this process exits are killed with it: an orphan whose output
// pipe is gone would otherwise run on unseen (and was seen spinning on its dead stdout).
const running = new Set<Subprocess>();
process.on("exit", () => {
  for (const proc of running) proc.kill("SIGKILL");
});

/** Starts a child process whose output is read line by line. */
export function startProcess(options: StartProcessOptions): ChildProcess {
  const proc = Bun.spawn(options.cmd, {
    cwd: options.cwd,
    env: options.env,
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  running.add(proc);
  void proc.exited.then(() => running.delete(proc));
  const lines: string[] = [];
  const record = (stream: "stdout" | "stderr") => (line: string) => {
    lines.push(line);
    if (lines.length > 5000) lines.splice(0, 1000);
    options.onLine?.(line, stream);
  };
  const pumped = Promise.all([pump(proc.stdout, record("stdout")), pump(proc.stderr, record("stderr"))]);
  // A pipe that fails to read has ended too.
  const outputEnded = pumped.then(
    () => undefined,
    () => undefined,
  );
  const finished = proc.exited.then(() => Promise.race([outputEnded, Bun.sleep(1_000)]));
  return {
    name: options.name,
    proc,
    output: () => lines.join("\n"),
    finished,
    async stop(signal = "SIGTERM", timeoutMs = 15_000) {
      if (proc.exitCode !== null || proc.signalCode !== null) return proc.exitCode;
      proc.kill(signal);
      const timer = setTimeout(() => proc.kill("SIGKILL"), timeoutMs);
      try {
        return await proc.exited;
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

/**
 * Polls an HTTP health URL until it answers 200, the process exits, or the time runs out;
 * fails with the process's last output so the cause is visible.
 */
export async function waitForHealthy(child: ChildProcess, url: string, timeoutMs = 30_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (child.proc.exitCode !== null || child.proc.signalCode !== null) {
      throw new Error(`${child.name} exited (code ${child.proc.exitCode ?? child.proc.signalCode}) before it was healthy:\n${tail(child.output())}`);
    }
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(1_000) });
      if (res.status === 200) return;
    } catch {
      // not listening yet
    }
    await Bun.sleep(50);
  }
  throw new Error(`${child.name} was not healthy at ${url} within ${timeoutMs} ms:\n${tail(child.output())}`);
}

/** The last `lines` lines of a process's output, for error messages. */
export function tail(text: string, lines = 30): string {
  return text.split("\n").slice(-lines).join("\n");
}
