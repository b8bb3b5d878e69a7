import { drizzle, type PostgresJsDatabase } from "drizzle-orm/postgres-js";
import { migrate } from "drizzle-orm/postgres-js/migrator";
import postgres, { type Sql } from "postgres";
import { withDatabase } from "./database-url.ts";
import { log } from "./log.ts";
import { dbQueries, observePool } from "./metrics.ts";
import { backoffDelayMs } from "./backoff.ts";
import { currentCallBudget } from "./call-budget.ts";
import { markPostgresOutage } from "./outage.ts";
import { redactUrl } from "./redact-url.ts";
import { context, type Span, trace } from "@opentelemetry/api";
import { recordError, SpanKind, tracer } from "./telemetry.ts";

/** Options of {@link openDatabase}. */
export interface DatabaseOptions<TSchema extends Record<string, unknown>> {
  /** The service's own database, e.g. postgres://postgres@127.0.0.1:5432/bazaar_catalog. */
  url: string;
  /** The drizzle schema (tables), for typed queries. */
  schema: TSchema;
  /** The folder of committed drizzle migrations, applied at open. */
  migrationsFolder: string;
  /** Connections in the pool. */
  maxConnections?: number;
  /**
   * Seconds to wait for a new connection before the query fails (UNAVAILABLE to the caller).
   * Well under a call's deadline, so an unreachable server fails fast instead of hanging.
   */
  connectTimeoutSeconds?: number;
}

/** An open service database: drizzle on a traced postgres.js pool. */
export interface Database<TSchema extends Record<string, unknown>> {
  /** Typed queries. */
  db: PostgresJsDatabase<TSchema>;
  /** The traced postgres.js client, for SQL that drizzle does not express. */
  sql: Sql;
  /** The database name. */
  name: string;
  /** Runs `select 1`, untraced (readiness checks run it every few seconds), counted in bazaar_db_queries_total. */
  ping(): Promise<void>;
  /** Closes the pool, letting running queries finish. */
  close(): Promise<void>;
}

/**
 * Opens a service's own database: creates it if missing, applies the committed migrations
 * (under an advisory lock, so replicas starting together do not race) and returns drizzle on
 * a postgres.js pool whose every query is a CLIENT span.
 */
export async function openDatabase<TSchema extends Record<string, unknown>>(options: DatabaseOptions<TSchema>): Promise<Database<TSchema>> {
  const name = await ensureDatabase(options.url);
  const maxConnections = options.maxConnections ?? 10;
  const raw = postgres(options.url, {
    max: maxConnections,
    connect_timeout: options.connectTimeoutSeconds ?? 2,
    backoff: reconnectDelaySeconds,
    onnotice: () => {},
    connection: { application_name: name },
  });
  const sql = traceSql(raw, name, maxConnections);
  const db = drizzle(sql, { schema: options.schema });
  const lock = await raw.reserve();
  try {
    await lock`select pg_advisory_lock(hashtext('bazaar:migrate'))`;
    await migrate(db, { migrationsFolder: options.migrationsFolder });
  } finally {
    await lock`select pg_advisory_unlock(hashtext('bazaar:migrate'))`.catch(() => {});
    lock.release();
  }
  return {
    db,
    sql,
    name,
    ping: async () => {
      dbQueries.labels(name).inc();
      await raw`select 1`;
    },
    close: () => raw.end({ timeout: 5 }),
  };
}

/**
 * How long a pool connection waits before connecting again after its connection failed, by
 * the pool's count of failures in a row. postgres.js's default (3^n / 100 s, up to 20 s) makes
 * the queries queued on that connection wait out the delay: during an outage they hung past
 * their callers' deadlines instead of failing at once, and after it the service took 3–6 s
 * (up to 20 s) to serve again. Here the delay doubles from 50 ms to at most 500 ms.
 */
function reconnectDelaySeconds(failures: number): number {
  return backoffDelayMs({ initialDelayMs: 50, maxDelayMs: 500, jitter: 0.2 }, Math.max(1, failures), Math.random()) / 1000;
}

/** Creates the database named in `url` if it does not exist yet; returns its name. */
export async function ensureDatabase(url: string): Promise<string> {
  const name = databaseName(url);
  const admin = postgres(withDatabase(url, "postgres"), { max: 1, onnotice: () => {} });
  try {
    const rows = await admin`select 1 from pg_database where datname = ${name}`;
    if (rows.length === 0) {
      await admin.unsafe(`create database "${name}"`).catch((err: unknown) => {
        // Created by a replica starting at the same moment, which is fine: Postgres says so
        // with 42P04, or, when both got past the check, with a unique violation (23505).
        const code = postgresError(err)?.code;
        if (code !== "42P04" && code !== "23505") throw err;
      });
      log.info("created database", { database: name });
    }
  } catch (err) {
    throw new Error(`cannot reach Postgres at ${redactUrl(url)} to create database ${name}: ${(err as Error).message}`);
  } finally {
    await admin.end({ timeout: 5 });
  }
  return name;
}

/** Drops a database (tests clean up after themselves with this), ending its connections. */
export async function dropDatabase(url: string): Promise<void> {
  const name = databaseName(url);
  const admin = postgres(withDatabase(url, "postgres"), { max: 1, onnotice: () => {} });
  try {
    await admin.unsafe(`drop database if exists "${name}" with (force)`);
  } finally {
    await admin.end({ timeout: 5 });
  }
}

/** The database name in a Postgres URL; only letters, digits and underscores are accepted. */
export function databaseName(url: string): string {
  const name = decodeURIComponent(new URL(url).pathname.replace(/^\//, ""));
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) {
    throw new Error(`database name ${JSON.stringify(name)} in ${redactUrl(url)} must be lowercase letters, digits and underscores`);
  }
  return name;
}

type Query = Promise<unknown> & { resolve: (x: unknown) => void; reject: (e: unknown) => void };
type UnsafeOptions = { prepare?: boolean; simple?: boolean } & Record<string, unknown>;
type UnsafeFn = (text: string, params?: unknown[], options?: UnsafeOptions) => Query;

/**
 * postgres.js's `unsafe` that prepares every query with parameters. drizzle sends all its
 * queries through `unsafe(text, params, { prepare: false })` (it prepares only queries given a
 * name with `.prepare(name)`), and an unprepared query with parameters costs Postgres a parse
 * and a plan each time and two round trips (Parse/Describe, then Bind/Execute). Prepared, the
 * connection parses once and after that sends only Bind/Execute: one round trip, no parse, and
 * after five runs Postgres may keep a generic plan.
 *
 * postgres.js keeps a connection's prepared statements by query text (and parameter types),
 * without bound, so query texts must not vary without bound: every query in this repository
 * passes values as parameters (no `sql.raw` with values); the texts that do vary are `inArray`
 * lists and multi-row inserts, one text per length, bounded by the request limits.
 *
 * Queries without parameters keep postgres.js's simple protocol (one round trip, and it allows
 * several statements in one text, which migrations and DDL in tests rely on). postgres.js
 * retries a prepared statement that Postgres invalidated (a migration changed a table's
 * columns) once, outside a transaction; a transaction fails with "cached plan must not change
 * result type" instead, as on any error. Only a text that selects `*` can meet that: drizzle
 * names every column it selects and returns.
 */
function preparedUnsafe(unsafe: UnsafeFn, client: unknown): (text: string, ...rest: unknown[]) => Query {
  return (text, ...rest) => {
    // unsafe(text), unsafe(text, params), unsafe(text, params, options) and unsafe(text, options).
    const [params, options] =
      Array.isArray(rest[0]) || rest[0] === undefined
        ? [rest[0] as unknown[] | undefined, rest[1] as UnsafeOptions | undefined]
        : [undefined, rest[0] as UnsafeOptions];
    return unsafe.call(client, text, params ?? [], { ...options, prepare: true });
  };
}

/**
 * Wraps a postgres.js client so that each query is a CLIENT span (db.system.name postgresql,
 * the SQL text with placeholders, never the values) from the moment it is issued until the
 * driver settles it, and is counted in `bazaar_db_queries_total` (with the BEGIN/COMMIT of
 * each transaction and SAVEPOINT/RELEASE of each savepoint). Tagged-template queries, `unsafe`
 * (what drizzle uses), transactions and savepoints are all covered.
 *
 * Every query with parameters runs as a prepared statement, see {@link preparedUnsafe}.
 *
 * It also counts what holds a connection of the pool: each query made outside a transaction
 * while it runs, and each transaction (or reserved connection) from BEGIN to its end; what
 * is in flight beyond the pool's `max` waits for a connection (the pool gauges).
 */
function traceSql(sql: Sql, database: string, maxConnections: number): Sql {
  const statements = dbQueries.labels(database);
  let inFlight = 0;
  observePool(database, () => ({ used: Math.min(inFlight, maxConnections), pending: Math.max(0, inFlight - maxConnections), max: maxConnections }));
  const instrument = (query: Query, text: string, pooled: boolean): Query => {
    statements.inc();
    // A postgres.js query runs when first awaited (a fragment inside another query never is):
    // it holds a connection from then until it settles.
    let holding = false;
    if (pooled) {
      const then = query.then;
      // biome-ignore lint/suspicious/noThenProperty: the query stays the thenable it was; this only notes when it is first awaited.
      query.then = function (this: Query, ...args: Parameters<Query["then"]>) {
        if (!holding) {
          holding = true;
          inFlight++;
        }
        return then.apply(this, args);
      } as Query["then"];
    }
    const released = () => {
      if (holding) {
        holding = false;
        inFlight--;
      }
    };
    const operation = /^\s*(\w+)/.exec(text)?.[1]?.toUpperCase() ?? "QUERY";
    const span = tracer().startSpan(`${operation} ${database}`, {
      kind: SpanKind.CLIENT,
      attributes: {
        "db.system.name": "postgresql",
        "db.namespace": database,
        "db.operation.name": operation,
        "db.query.text": text,
      },
    });
    // A query made for a gRPC call is cancelled when that call runs out of time or its
    // caller gives up (postgres.js sends Postgres a cancel request): no work for nobody.
    const budget = currentCallBudget();
    const cancel = () => (query as Query & { cancel?: () => void }).cancel?.();
    budget?.signal.addEventListener("abort", cancel, { once: true });
    const { resolve, reject } = query;
    query.resolve = (x) => {
      released();
      budget?.signal.removeEventListener("abort", cancel);
      span.end();
      resolve(x);
    };
    query.reject = (e) => {
      released();
      budget?.signal.removeEventListener("abort", cancel);
      markPostgresOutage(e);
      recordError(span, e);
      span.end();
      reject(e);
    };
    return query;
  };
  /** `pooled`: the pool itself (its queries take a connection each), not a transaction's handle. */
  const wrap = (target: Sql, pooled: boolean): Sql =>
    new Proxy(target, {
      apply(fn, thisArg, args: unknown[]) {
        const result = Reflect.apply(fn as unknown as (...a: unknown[]) => unknown, thisArg, args);
        const strings = args[0] as TemplateStringsArray | undefined;
        // sql`...` is a query; sql(value) is a helper fragment (identifiers, lists), not a query.
        if (Array.isArray(strings) && "raw" in strings) {
          return instrument(
            result as Query,
            strings.reduce((acc, s, i) => `${acc}$${i}${s}`),
            pooled,
          );
        }
        return result;
      },
      get(obj, prop, receiver) {
        const value = Reflect.get(obj, prop, receiver);
        if (prop === "unsafe") {
          const unsafe = preparedUnsafe(value as UnsafeFn, obj);
          return (text: string, ...rest: unknown[]) => instrument(unsafe(text, ...rest), text, pooled);
        }
        if (prop === "begin" || prop === "savepoint") {
          return (...args: unknown[]) => {
            // BEGIN and COMMIT (or ROLLBACK); SAVEPOINT and RELEASE (or ROLLBACK TO).
            statements.inc(2);
            // A transaction holds a connection of the pool from BEGIN to its end; a savepoint is inside one.
            const holds = pooled && prop === "begin";
            if (holds) inFlight++;
            const fn = args.pop() as (tx: Sql) => unknown;
            const span = transactionSpan(prop, database);
            // The transaction's queries are its span's children; untraced, they keep the caller's parent.
            const body = span.isRecording()
              ? (tx: Sql) => context.with(trace.setSpan(context.active(), span), () => fn(wrap(tx, false)))
              : (tx: Sql) => fn(wrap(tx, false));
            const done = (value as (...a: unknown[]) => Promise<unknown>).call(obj, ...args, body);
            // A transaction that could not begin (or commit) fails here, not in a query.
            return done.then(
              (result) => {
                if (holds) inFlight--;
                span.end();
                return result;
              },
              (err: unknown) => {
                if (holds) inFlight--;
                markPostgresOutage(err);
                recordError(span, err);
                span.end();
                throw err;
              },
            );
          };
        }
        return value;
      },
    });
  return wrap(sql, true);
}

/**
 * A CLIENT span for a transaction (or a savepoint) from BEGIN until COMMIT or ROLLBACK, the
 * parent of its queries: `db.operation.name` TRANSACTION (or SAVEPOINT), as no semantic
 * convention names one yet.
 */
function transactionSpan(kind: "begin" | "savepoint", database: string): Span {
  const operation = kind === "begin" ? "TRANSACTION" : "SAVEPOINT";
  return tracer().startSpan(`${operation} ${database}`, {
    kind: SpanKind.CLIENT,
    attributes: { "db.system.name": "postgresql", "db.namespace": database, "db.operation.name": operation },
  });
}

/** What Postgres said about a failed statement. */
export interface PostgresErrorInfo {
  /** The SQLSTATE, e.g. "23505" (unique violation). */
  code: string;
  constraint?: string;
  detail?: string;
}

/**
 * The Postgres error behind a failure, if it was one: drizzle wraps driver errors (as the
 * `cause` of its own), so domain code asks here instead of poking at either.
 */
export function postgresError(err: unknown): PostgresErrorInfo | undefined {
  for (let e: unknown = err, depth = 0; e && depth < 4; e = (e as { cause?: unknown }).cause, depth++) {
    const candidate = e as { code?: unknown; constraint_name?: string; detail?: string; name?: string };
    if (typeof candidate.code === "string" && /^[0-9A-Z]{5}$/.test(candidate.code)) {
      return { code: candidate.code, constraint: candidate.constraint_name, detail: candidate.detail };
    }
  }
  return undefined;
}
