/**
 * A Docker engine and a compose project for tests: starts `dockerd` when it is installed but
 * not running (and stops it again afterwards), builds the local stand-in images and Bazaar's
 * image, and drives one compose project with a name of its own, so a test run never touches
 * another run's containers, networks or volumes. Every command is bounded in time.
 */
import { type Subprocess, spawn } from "bun";
import { tail } from "@bazaar/platform/processes";

const root = new URL("../..", import.meta.url).pathname;

/** The output of a finished command. */
export interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion (killed after `timeoutMs`); fails with its output unless `allowFailure`. */
export async function run(
  cmd: string[],
  options: { env?: Record<string, string | undefined>; timeoutMs?: number; allowFailure?: boolean; cwd?: string } = {},
): Promise<Ran> {
  const proc = spawn(cmd, { cwd: options.cwd ?? root, env: options.env ?? process.env, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const timeoutMs = options.timeoutMs ?? 60_000;
  const timer = setTimeout(() => proc.kill("SIGKILL"), timeoutMs);
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  clearTimeout(timer);
  if (proc.signalCode === "SIGKILL") throw new Error(`${cmd.join(" ")} took longer than ${timeoutMs} ms:\n${tail((stdout + stderr).trimEnd(), 40)}`);
  if (code !== 0 && !options.allowFailure) throw new Error(`${cmd.join(" ")} exited ${code}:\n${tail((stdout + stderr).trimEnd(), 40)}`);
  return { code, stdout, stderr };
}

async function engineAnswers(): Promise<boolean> {
  const res = await run(["docker", "info", "--format", "{{.ServerVersion}}"], { allowFailure: true, timeoutMs: 10_000 }).catch(() => undefined);
  return res?.code === 0;
}

/** A running Docker engine; `stop()` stops it if this process started it. */
export interface DockerEngine {
  startedHere: boolean;
  stop(): Promise<void>;
}

/**
 * Makes sure a Docker engine answers: uses a running one, else starts `dockerd` (root only, as
 * this machine kind has no systemd). Resolves to undefined, with the reason, where none can run.
 */
export async function ensureDockerEngine(): Promise<{ engine?: DockerEngine; reason?: string }> {
  if (!Bun.which("docker")) return { reason: "the docker command is not installed (scripts/setup.sh installs docker.io)" };
  if (await engineAnswers()) return { engine: { startedHere: false, stop: async () => {} } };
  const dockerd = Bun.which("dockerd");
  if (!dockerd) return { reason: "no Docker engine is running and dockerd is not installed" };
  if (process.getuid?.() !== 0) return { reason: "no Docker engine is running and starting dockerd needs root" };
  const proc: Subprocess = spawn([dockerd], { stdin: "ignore", stdout: Bun.file("/tmp/bazaar-dockerd.log"), stderr: Bun.file("/tmp/bazaar-dockerd.log") });
  for (const deadline = Date.now() + 30_000; Date.now() < deadline; await Bun.sleep(250)) {
    if (proc.exitCode !== null) break;
    if (await engineAnswers()) {
      return {
        engine: {
          startedHere: true,
          async stop() {
            proc.kill("SIGTERM");
            const timer = setTimeout(() => proc.kill("SIGKILL"), 20_000);
            await proc.exited;
            clearTimeout(timer);
          },
        },
      };
    }
  }
  proc.kill("SIGKILL");
  const log = await Bun.file("/tmp/bazaar-dockerd.log")
    .text()
    .catch(() => "");
  return { reason: `dockerd did not start within 30 s:\n${tail(log, 15)}` };
}

/** The compose command: Compose v2 (`docker compose`) where it is installed, else the v1 tool. */
export async function composeCommand(): Promise<string[]> {
  const v2 = await run(["docker", "compose", "version"], { allowFailure: true, timeoutMs: 10_000 });
  if (v2.code === 0) return ["docker", "compose"];
  if (Bun.which("docker-compose")) return ["docker-compose"];
  throw new Error("neither `docker compose` (v2) nor `docker-compose` (v1) is installed");
}

/** One container of a project, as `docker inspect` sees it. */
export interface ContainerState {
  service: string;
  status: string;
  health: string | undefined;
}

/** A compose project with a name of its own, run with the given files and variables. */
export class ComposeProject {
  constructor(
    readonly command: string[],
    readonly name: string,
    readonly files: string[],
    readonly env: Record<string, string | undefined>,
    readonly envFile?: string,
  ) {}

  private args(...rest: string[]): string[] {
    return [
      ...this.command,
      "--project-name",
      this.name,
      ...(this.envFile ? ["--env-file", this.envFile] : []),
      ...this.files.flatMap((f) => ["-f", f]),
      ...rest,
    ];
  }

  /** Runs a compose subcommand, e.g. `compose("up", "-d")`. */
  compose(args: string[], timeoutMs = 120_000, allowFailure = false): Promise<Ran> {
    return run(this.args(...args), { env: this.env, timeoutMs, allowFailure });
  }

  /** Every container of the project with its state and health. */
  async containers(): Promise<ContainerState[]> {
    const ids = (await run(["docker", "ps", "-aq", "--filter", `label=com.docker.compose.project=${this.name}`])).stdout.split("\n").filter(Boolean);
    if (!ids.length) return [];
    const format = '{{index .Config.Labels "com.docker.compose.service"}}|{{.State.Status}}|{{if .State.Health}}{{.State.Health.Status}}{{end}}';
    const lines = (await run(["docker", "inspect", "--format", format, ...ids])).stdout.split("\n").filter(Boolean);
    return lines.map((l) => {
      const [service = "", status = "", health = ""] = l.split("|");
      return { service, status, health: health || undefined };
    });
  }

  /**
   * `up --detach --no-build`; when compose gives up (a dependency unhealthy), fails with what a
   * person needs to see why: each container's state, and the logs and last health checks of
   * the ones that are not running and healthy.
   */
  async up(timeoutMs: number): Promise<void> {
    const ran = await this.compose(["up", "--detach", "--no-build"], timeoutMs, true);
    if (ran.code === 0) return;
    const states = await this.containers();
    const bad = states.filter((c) => c.status !== "running" || c.health === "unhealthy" || c.health === "starting").map((c) => c.service);
    const logs = bad.length ? await this.compose(["logs", "--no-color", "--tail", "40", ...bad], 30_000, true) : undefined;
    const ids = (await run(["docker", "ps", "-aq", "--filter", `label=com.docker.compose.project=${this.name}`])).stdout.split("\n").filter(Boolean);
    const format = '{{index .Config.Labels "com.docker.compose.service"}} {{json .State.Health}}';
    const health = ids.length ? (await run(["docker", "inspect", "--format", format, ...ids], { allowFailure: true })).stdout : "";
    const checks = health
      .split("\n")
      .filter((line) => bad.some((service) => line.startsWith(`${service} `)))
      .join("\n");
    throw new Error(
      `compose up failed:\n${tail((ran.stdout + ran.stderr).trimEnd(), 20)}\ncontainers: ${JSON.stringify(states)}\nhealth checks:\n${tail(checks, 40)}\n${tail((logs?.stdout ?? "") + (logs?.stderr ?? ""), 120)}`,
    );
  }

  /** Waits until every listed service has a running, healthy container; fails naming the ones that are not. */
  async waitHealthy(services: readonly string[], timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let states: ContainerState[] = [];
    for (;;) {
      states = await this.containers();
      const bad = services.filter((s) => !states.some((c) => c.service === s && c.status === "running" && c.health === "healthy"));
      if (!bad.length) return;
      if (Date.now() > deadline) {
        const logs = await this.compose(["logs", "--no-color", "--tail", "30", ...bad], 30_000, true);
        throw new Error(`not healthy within ${timeoutMs} ms: ${bad.join(", ")}\n${JSON.stringify(states)}\n${tail(logs.stdout + logs.stderr, 80)}`);
      }
      await Bun.sleep(1_000);
    }
  }

  /** The memory each container uses now (`docker stats`), by service. */
  async memory(): Promise<Record<string, string>> {
    const ids = (await run(["docker", "ps", "-q", "--filter", `label=com.docker.compose.project=${this.name}`])).stdout.split("\n").filter(Boolean);
    const out: Record<string, string> = {};
    if (!ids.length) return out;
    const stats = await run(["docker", "stats", "--no-stream", "--format", "{{.Name}}|{{.MemUsage}}", ...ids], { timeoutMs: 60_000 });
    for (const line of stats.stdout.split("\n").filter(Boolean)) {
      const [name = "", usage = ""] = line.split("|");
      out[
        name
          .replace(`${this.name}_`, "")
          .replace(`${this.name}-`, "")
          .replace(/[-_]1$/, "")
      ] = usage;
    }
    return out;
  }

  /** Stops and removes everything of the project, volumes included. */
  down(): Promise<Ran> {
    return this.compose(["down", "--volumes", "--remove-orphans", "--timeout", "20"], 180_000, true);
  }
}
