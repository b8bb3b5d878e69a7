/**
 * Infrastructure servers of a test's own, for fault tests: a real Postgres cluster (initdb in
 * a temporary directory), a real redis-server and a real RabbitMQ node, each on free ports,
 * which the test stops, kills, pauses and starts again without touching the machine's shared
 * servers. Debian's binaries; when the test runs as root, Postgres runs as the `postgres` user
 * (initdb refuses root) and RabbitMQ as `rabbitmq` (whose Erlang cookie rabbitmqctl uses).
 */
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "./fixtures.ts";

const asRoot = process.getuid?.() === 0;

/** The directory of Debian's Postgres binaries (the newest installed version). */
function postgresBin(): string {
  const root = "/usr/lib/postgresql";
  const versions = readdirSync(root)
    .filter((v) => /^\d+$/.test(v))
    .sort((a, b) => Number(b) - Number(a));
  if (!versions[0]) throw new Error(`no Postgres binaries under ${root}: apt-get install postgresql`);
  return join(root, versions[0], "bin");
}

/** Runs a command to completion (as `user` when root), bounded to 30 s; throws with its output on failure. */
async function run(command: string[], what: string, user = "postgres"): Promise<void> {
  const argv = asRoot ? ["runuser", "-u", user, "--", ...command] : command;
  const proc = Bun.spawn(argv, { stdout: "pipe", stderr: "pipe" });
  const timer = setTimeout(() => proc.kill("SIGKILL"), 30_000);
  const code = await proc.exited;
  clearTimeout(timer);
  if (code !== 0) throw new Error(`${what} failed (exit ${code}): ${await new Response(proc.stderr).text()}${await new Response(proc.stdout).text()}`);
}

/** A Postgres cluster of the test's own. */
export class PrivatePostgres {
  private constructor(
    private readonly dir: string,
    readonly port: number,
  ) {}

  /** Creates the cluster (about a second) and starts it. */
  static async create(): Promise<PrivatePostgres> {
    const dir = mkdtempSync(join(tmpdir(), "bazaar-pg-"));
    if (asRoot) chownSync(dir, Number(await idOf("postgres")), -1);
    const pg = new PrivatePostgres(dir, freePort());
    await run([join(postgresBin(), "initdb"), "-D", pg.dataDir, "-A", "trust", "-U", "postgres", "--no-sync"], "initdb");
    await pg.start();
    return pg;
  }

  private get dataDir(): string {
    return join(this.dir, "data");
  }

  /** A URL of a database on this server. */
  url(database = "postgres"): string {
    return `postgres://postgres@127.0.0.1:${this.port}/${database}`;
  }

  /** Starts the server and waits until it accepts connections. */
  async start(): Promise<void> {
    const options = `-p ${this.port} -k ${this.dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100`;
    await run([join(postgresBin(), "pg_ctl"), "-D", this.dataDir, "-o", options, "-l", join(this.dir, "log"), "-w", "-t", "20", "start"], "pg_ctl start").catch(
      (err: Error) => {
        const log = existsSync(join(this.dir, "log")) ? readFileSync(join(this.dir, "log"), "utf8").split("\n").slice(-15).join("\n") : "(no log)";
        throw new Error(`${err.message}\nthe server's log ends:\n${log}`);
      },
    );
  }

  /** Stops the server: "immediate" drops every connection at once, as a crash would. */
  async stop(mode: "fast" | "immediate" = "immediate"): Promise<void> {
    await run([join(postgresBin(), "pg_ctl"), "-D", this.dataDir, "-m", mode, "-w", "-t", "20", "stop"], "pg_ctl stop");
  }

  /** Stops the server if it runs and deletes its files. */
  async destroy(): Promise<void> {
    await this.stop().catch(() => {});
    rmSync(this.dir, { recursive: true, force: true });
  }
}

async function idOf(user: string): Promise<string> {
  const proc = Bun.spawn(["id", "-u", user], { stdout: "pipe" });
  const out = (await new Response(proc.stdout).text()).trim();
  if ((await proc.exited) !== 0 || !out) throw new Error(`no user ${user}: Postgres's package creates it`);
  return out;
}

/**
 * The persistence flags of compose.yaml's Redis (tests/compose-redis.test.ts holds the two to
 * each other): every write appended to a log, fsynced once a second, no RDB snapshots.
 */
export const persistentRedisArgs: readonly string[] = ["--save", "", "--appendonly", "yes", "--appendfsync", "everysec"];

/** Options of {@link PrivateRedis.create}. */
export interface PrivateRedisOptions {
  /**
   * Keep the data across restarts as compose's Redis does ({@link persistentRedisArgs}), in a
   * temporary directory of its own; default false: nothing on disk, as the machine's Redis.
   */
  persistent?: boolean;
}

/** A redis-server of the test's own: keeping nothing on disk (as the machine's Redis) unless asked to persist. */
export class PrivateRedis {
  private proc: ReturnType<typeof Bun.spawn> | undefined;

  private constructor(
    readonly port: number,
    private readonly dataDir: string | undefined,
  ) {}

  static async create(options: PrivateRedisOptions = {}): Promise<PrivateRedis> {
    const redis = new PrivateRedis(freePort(), options.persistent ? mkdtempSync(join(tmpdir(), "bazaar-redis-")) : undefined);
    await redis.start();
    return redis;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Where a persistent server keeps its files (undefined without persistence). */
  get dataDirectory(): string | undefined {
    return this.dataDir;
  }

  /** Starts the server and waits (up to 10 s) until it answers. */
  async start(): Promise<void> {
    const persistence = this.dataDir ? ["--dir", this.dataDir, ...persistentRedisArgs] : ["--save", "", "--appendonly", "no"];
    this.proc = Bun.spawn(["redis-server", "--port", String(this.port), "--bind", "127.0.0.1", ...persistence], {
      stdout: "ignore",
      stderr: "ignore",
    });
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      const ok = await fetch(`http://127.0.0.1:${this.port}`).then(
        () => true,
        // redis-server closes an HTTP request's connection: any answer but "refused" means it listens.
        (err: Error) => !/ECONNREFUSED|Unable to connect/i.test(`${err.message} ${(err as { code?: string }).code ?? ""}`),
      );
      if (ok) return;
      await Bun.sleep(50);
    }
    throw new Error(`redis-server on port ${this.port} did not start within 10 s`);
  }

  /**
   * Stops the server. SIGKILL (the default) is a crash: what is only in memory is lost (all of
   * it without persistence; with it, at most the writes of the last second not yet fsynced).
   * SIGTERM is a clean shutdown: Redis fsyncs the log before it exits (bounded to 10 s, then killed).
   */
  async stop(signal: "SIGKILL" | "SIGTERM" = "SIGKILL"): Promise<void> {
    const proc = this.proc;
    if (!proc) return;
    proc.kill(signal);
    const timer = setTimeout(() => proc.kill("SIGKILL"), 10_000);
    await proc.exited;
    clearTimeout(timer);
    this.proc = undefined;
  }

  /**
   * Freezes the server (SIGSTOP): connections stay open and commands are accepted by the
   * kernel but never answered, as with a Redis stuck in a long command or a half-open socket.
   */
  pause(): void {
    this.proc?.kill("SIGSTOP");
  }

  /** Lets a paused server run again (SIGCONT); it answers what was sent meanwhile. */
  resume(): void {
    this.proc?.kill("SIGCONT");
  }

  /** Kills the server and deletes its data directory, if it has one. */
  async destroy(): Promise<void> {
    this.resume();
    await this.stop();
    if (this.dataDir) rmSync(this.dataDir, { recursive: true, force: true });
  }
}

/**
 * A RabbitMQ node of the test's own (its own node name, AMQP and distribution ports, data
 * and log directories, no plugins), registered with the machine's epmd beside the shared
 * node. Starting takes about 5 s. Its default vhost "/" and guest user are the test's.
 */
export class PrivateRabbitMQ {
  private constructor(
    private readonly dir: string,
    readonly port: number,
    private readonly distPort: number,
    readonly node: string,
  ) {}

  static async create(): Promise<PrivateRabbitMQ> {
    const dir = mkdtempSync(join(tmpdir(), "bazaar-rabbitmq-"));
    const port = freePort();
    const rabbit = new PrivateRabbitMQ(dir, port, freePort(), `bazaar-${port}@localhost`);
    // Its own config file, so the machine's /etc/rabbitmq (which names the shared node's port) is not read.
    writeFileSync(join(dir, "rabbitmq.conf"), `listeners.tcp.local = 127.0.0.1:${port}\n`);
    writeFileSync(join(dir, "enabled_plugins"), "[].\n");
    if (asRoot) {
      const uid = Number(await idOf("rabbitmq"));
      for (const f of ["", "rabbitmq.conf", "enabled_plugins"]) chownSync(join(dir, f), uid, -1);
    }
    await rabbit.start();
    return rabbit;
  }

  /** The AMQP URL of the node's default vhost. */
  get url(): string {
    return `amqp://guest:guest@127.0.0.1:${this.port}`;
  }

  /** Starts the node and waits (up to 30 s) until RabbitMQ runs on it; what was durable before is there again. */
  async start(): Promise<void> {
    const env = [
      `HOME=${asRoot ? "/var/lib/rabbitmq" : (process.env.HOME ?? this.dir)}`,
      `RABBITMQ_NODENAME=${this.node}`,
      `RABBITMQ_DIST_PORT=${this.distPort}`,
      `RABBITMQ_CONFIG_FILE=${join(this.dir, "rabbitmq.conf")}`,
      `RABBITMQ_ENABLED_PLUGINS_FILE=${join(this.dir, "enabled_plugins")}`,
      `RABBITMQ_MNESIA_BASE=${join(this.dir, "mnesia")}`,
      `RABBITMQ_LOG_BASE=${join(this.dir, "log")}`,
      `RABBITMQ_PID_FILE=${this.pidFile}`,
    ];
    await run(["env", ...env, `${rabbitmqBin}/rabbitmq-server`, "-detached"], "rabbitmq-server start", "rabbitmq");
    await this.ctl(["wait", this.pidFile, "--timeout", "30"], "rabbitmqctl wait");
  }

  /** Stops the node (a clean stop: durable queues and persistent messages are kept) and waits until it has. */
  async stop(): Promise<void> {
    await this.ctl(["stop", this.pidFile], "rabbitmqctl stop");
  }

  /** Runs rabbitmqctl against this node, e.g. `["list_queues", "name", "messages"]`; resolves with its output. */
  async ctl(args: string[], what = `rabbitmqctl ${args[0]}`): Promise<string> {
    const argv = [`${rabbitmqBin}/rabbitmqctl`, "-q", "-n", this.node, ...args];
    const proc = Bun.spawn(asRoot ? ["runuser", "-u", "rabbitmq", "--", "env", "HOME=/var/lib/rabbitmq", ...argv] : argv, { stdout: "pipe", stderr: "pipe" });
    const timer = setTimeout(() => proc.kill("SIGKILL"), 40_000);
    const [code, out, err] = await Promise.all([proc.exited, new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
    clearTimeout(timer);
    if (code !== 0) throw new Error(`${what} failed (exit ${code}): ${err}${out}`);
    return out;
  }

  private get pidFile(): string {
    return join(this.dir, "pid");
  }

  /** Stops the node if it runs and deletes its files. */
  async destroy(): Promise<void> {
    await this.stop().catch(() => {});
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Where Debian's RabbitMQ keeps its scripts (the ones on PATH switch users and drop the environment). */
const rabbitmqBin = "/usr/lib/rabbitmq/bin";
