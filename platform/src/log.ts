import { trace } from "@opentelemetry/api";

/** Log levels, lowest first. */
export type LogLevel = "debug" | "info" | "warn" | "error";
const rank: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** Structured fields added to a log line. */
export type LogFields = Record<string, unknown>;

/** A JSON logger: one object per line on stdout, carrying the active trace_id and span_id. */
export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** A logger that adds these fields to every line. */
  child(fields: LogFields): Logger;
}

let state: { service: string; level: LogLevel } = { service: "bazaar", level: "info" };

/**
 * A second destination of every line written, beside stdout: telemetry.ts sets one that
 * exports the record over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set. It is called
 * synchronously inside the caller's context, so it can read the active span itself.
 */
export type LogSink = (level: LogLevel, msg: string, fields: LogFields) => void;
let sink: LogSink | undefined;

/** Sends every line written from now on to `next` as well (undefined: stdout only). */
export function setLogSink(next: LogSink | undefined): void {
  sink = next;
}

/** Sets the service name stamped on every line and the lowest level written. */
export function configureLogging(service: string, level: LogLevel): void {
  state = { service, level };
}

function serializeError(err: unknown): unknown {
  if (!(err instanceof Error)) return err;
  return { type: err.name, message: err.message, stack: err.stack };
}

function write(level: LogLevel, msg: string, base: LogFields, fields?: LogFields): void {
  if (rank[level] < rank[state.level]) return;
  const line: LogFields = { time: new Date().toISOString(), level, service: state.service, msg };
  const span = trace.getActiveSpan()?.spanContext();
  if (span) {
    line.trace_id = span.traceId;
    line.span_id = span.spanId;
  }
  const all = { ...base, ...fields };
  for (const [k, v] of Object.entries(all)) line[k] = k === "err" ? serializeError(v) : v;
  (level === "error" || level === "warn" ? process.stderr : process.stdout).write(`${JSON.stringify(line)}\n`);
  sink?.(level, msg, all);
}

function makeLogger(base: LogFields): Logger {
  return {
    debug: (msg, fields) => write("debug", msg, base, fields),
    info: (msg, fields) => write("info", msg, base, fields),
    warn: (msg, fields) => write("warn", msg, base, fields),
    error: (msg, fields) => write("error", msg, base, fields),
    child: (fields) => makeLogger({ ...base, ...fields }),
  };
}

/** The process's logger. */
export const log: Logger = makeLogger({});

/**
 * A warning that may recur on every call (a cache command failing while Redis is down), written
 * at most once per `intervalMs`; the next line written says how many were left out meanwhile.
 */
export function throttledWarning(msg: string, intervalMs = 10_000): (fields?: LogFields) => void {
  let lastAt = Number.NEGATIVE_INFINITY;
  let suppressed = 0;
  return (fields) => {
    const now = Date.now();
    if (now - lastAt < intervalMs) {
      suppressed++;
      return;
    }
    log.warn(msg, suppressed ? { ...fields, suppressed } : fields);
    lastAt = now;
    suppressed = 0;
  };
}
