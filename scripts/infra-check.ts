import postgres from "postgres";
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

/**
 * Opens a connection to the URL's host and port (TLS when asked), writes `hello` and waits
 * (3 s at most) until `judge` decides on what came back so far: true is a pass, false waits
 * for more, a throw is the problem. A few bytes of each protocol prove the right server
 * listens, without loading its client library into the dev runner (node-redis alone costs
 * about 13 MB).
 */
function converse(url: URL, defaultPort: number, hello: Uint8Array, judge: (received: Buffer) => boolean, tls = false): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let received = Buffer.alloc(0);
    const timer = setTimeout(() => reject(new Error("no answer within 3 s")), 3_000);
    const settle = (err?: Error) => {
      clearTimeout(timer);
      if (err) reject(err);
      else resolve();
    };
    Bun.connect({
      hostname: url.hostname.replace(/^\[|\]$/g, ""),
      port: Number(url.port || defaultPort),
      tls,
      socket: {
        open(socket) {
          socket.write(hello);
        },
        data(socket, data) {
          received = Buffer.concat([received, data]);
          try {
            if (!judge(received)) return;
            socket.end();
            settle();
          } catch (err) {
            socket.end();
            settle(err as Error);
          }
        },
        connectError(_socket, err) {
          settle(new Error(`cannot connect: ${err.message}`));
        },
        error(_socket, err) {
          settle(err);
        },
      },
    }).catch((err: Error) => settle(new Error(`cannot connect: ${err.message}`)));
  });
}

/** A command in RESP, Redis's protocol: an array of bulk strings. */
function resp(...args: string[]): string {
  return `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join("")}`;
}

/** Sends AUTH (when the URL has a password) and PING; a Redis answers +PONG. */
function checkRedis(url: string) {
  return check("Redis", url, () => {
    const u = new URL(url);
    const password = decodeURIComponent(u.password);
    const auth = password ? resp("AUTH", ...(u.username ? [decodeURIComponent(u.username)] : []), password) : "";
    return converse(
      u,
      6379,
      new TextEncoder().encode(`${auth}${resp("PING")}`),
      (received) => {
        const text = received.toString("latin1");
        const error = /^-(.*)\r\n/m.exec(text);
        if (error) throw new Error(`Redis refused: ${error[1]}`);
        if (/^\+PONG\r\n/m.test(text)) return true;
        if (/^[^+\-:$*]/.test(text)) throw new Error("something answered that is not Redis");
        return false;
      },
      u.protocol === "rediss:",
    );
  });
}

/**
 * Sends the AMQP 0-9-1 protocol header; a broker answers with a Connection.Start method frame
 * (frame type 1). Proves it is RabbitMQ that listens, not just anything.
 */
function checkRabbit(url: string) {
  return check("RabbitMQ", url, () =>
    converse(new URL(url), 5672, new Uint8Array([0x41, 0x4d, 0x51, 0x50, 0, 0, 9, 1]), (received) => {
      if (received[0] === 1) return true;
      throw new Error("something answered that is not an AMQP 0-9-1 broker");
    }),
  );
}

/** Checks Postgres, Redis and RabbitMQ at once. */
export function checkInfrastructure(urls: { postgres: string; redis: string; amqp: string }): Promise<CheckResult[]> {
  return Promise.all([checkPostgres(urls.postgres), checkRedis(urls.redis), checkRabbit(urls.amqp)]);
}
