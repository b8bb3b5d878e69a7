import postgres from "postgres";
import { createClient } from "redis";
import { redactUrl } from "@bazaar/platform/redact-url";

/** The outcome of checking one piece of infrastructure. */
export interface CheckResult {
  name: string;
  url: string;
  ok: boolean;
  /** What went wrong and how to fix it, when not ok. */
  problem?: string;
}

const hints = {
  Postgres: "start it (pg_ctlcluster <version> main start) or set POSTGRES_URL",
  Redis: "start it (redis-server --daemonize yes) or set REDIS_URL",
  RabbitMQ: "start it (rabbitmq-server -detached) or set AMQP_URL",
};

async function check(name: keyof typeof hints, url: string, probe: () => Promise<void>): Promise<CheckResult> {
  try {
    await probe();
    return { name, url: redactUrl(url), ok: true };
  } catch (err) {
    return { name, url: redactUrl(url), ok: false, problem: `${(err as Error).message}; ${hints[name]}` };
  }
}

/** Connects to Postgres and runs `select 1`. */
function checkPostgres(url: string) {
  return check("Postgres", url, async () => {
    const sql = postgres(url, { max: 1, connect_timeout: 3, onnotice: () => {} });
    try {
      await sql`select 1`;
    } finally {
      await sql.end({ timeout: 1 });
    }
  });
}

/** Connects to Redis and sends PING. */
function checkRedis(url: string) {
  return check("Redis", url, async () => {
    const client = createClient({ url, socket: { connectTimeout: 3_000, reconnectStrategy: false } });
    client.on("error", () => {});
    await client.connect();
    try {
      await client.ping();
    } finally {
      await client.close();
    }
  });
}

/**
 * Opens a TCP connection to the AMQP port and sends the AMQP 0-9-1 protocol header; a broker
 * answers with a Connection.Start method frame (frame type 1). Proves it is RabbitMQ that
 * listens, not just anything.
 */
function checkRabbit(url: string) {
  return check("RabbitMQ", url, async () => {
    const u = new URL(url);
    const port = Number(u.port || 5672);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("no AMQP answer within 3 s")), 3_000);
      Bun.connect({
        hostname: u.hostname,
        port,
        socket: {
          open(socket) {
            socket.write(new Uint8Array([0x41, 0x4d, 0x51, 0x50, 0, 0, 9, 1]));
          },
          data(socket, data) {
            clearTimeout(timer);
            socket.end();
            if (data[0] === 1) resolve();
            else reject(new Error("something answered that is not an AMQP 0-9-1 broker"));
          },
          connectError(_socket, err) {
            clearTimeout(timer);
            reject(new Error(`cannot connect: ${err.message}`));
          },
          error(_socket, err) {
            clearTimeout(timer);
            reject(err);
          },
        },
      }).catch((err: Error) => {
        clearTimeout(timer);
        reject(new Error(`cannot connect: ${err.message}`));
      });
    });
  });
}

/** Checks Postgres, Redis and RabbitMQ at once. */
export function checkInfrastructure(urls: { postgres: string; redis: string; amqp: string }): Promise<CheckResult[]> {
  return Promise.all([checkPostgres(urls.postgres), checkRedis(urls.redis), checkRabbit(urls.amqp)]);
}
