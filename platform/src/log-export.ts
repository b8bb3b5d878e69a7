import { type AnyValue, type Attributes, type Context, SeverityNumber } from "@opentelemetry/api";
import { OTLPLogExporter } from "@opentelemetry/exporter-logs-otlp-http";
import type { Resource } from "@opentelemetry/resources";
import { BatchLogRecordProcessor, LoggerProvider } from "@opentelemetry/sdk-logs";
import type { LogFields, LogLevel } from "./log.ts";

/**
 * The OTLP half of the logger, loaded by telemetry.ts only when OTEL_EXPORTER_OTLP_ENDPOINT is
 * set: the logs SDK and its exporter stay out of a process that exports nothing. Every line the
 * logger writes becomes a log record with the line's level as its severity, its message as the
 * body, its fields as attributes, the active span's trace context and the process's resource
 * (the one its spans carry), batched and sent to `<endpoint>/v1/logs` as OTLP JSON.
 */

const severity: Record<LogLevel, SeverityNumber> = {
  debug: SeverityNumber.DEBUG,
  info: SeverityNumber.INFO,
  warn: SeverityNumber.WARN,
  error: SeverityNumber.ERROR,
};

/** One line for {@link LogExport.emit}: when it was written and in which context. */
export interface LogLine {
  level: LogLevel;
  msg: string;
  fields: LogFields;
  /** Milliseconds since the epoch, as Date.now() gave when the line was written. */
  time: number;
  context: Context;
}

/** What {@link startLogExport} gives telemetry.ts. */
export interface LogExport {
  emit(line: LogLine): void;
  /** Sends the records still buffered and stops; never rejects. */
  shutdown(): Promise<void>;
}

/**
 * A field's value as an OTLP attribute value: strings, numbers, booleans and arrays of one of
 * them as they are; anything else (an object, a bigint) as its JSON text, which is how the
 * stdout line shows it too.
 */
function attributeValue(v: unknown): AnyValue | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === "string" || typeof v === "number" || typeof v === "boolean") return v;
  if (Array.isArray(v) && v.every((x) => typeof x === "string")) return v as string[];
  if (Array.isArray(v) && v.every((x) => typeof x === "number")) return v as number[];
  if (typeof v === "bigint") return v.toString();
  try {
    return JSON.stringify(v);
  } catch {
    return String(v);
  }
}

/** The line's fields as attributes; an `err` that is an Error as the semantic exception.* ones. */
export function logAttributes(fields: LogFields): Attributes {
  const attributes: Attributes = {};
  for (const [key, v] of Object.entries(fields)) {
    if (key === "err" && v instanceof Error) {
      attributes["exception.type"] = v.name;
      attributes["exception.message"] = v.message;
      if (v.stack) attributes["exception.stacktrace"] = v.stack;
      continue;
    }
    const value = attributeValue(v);
    if (value !== undefined) attributes[key] = value as Attributes[string];
  }
  return attributes;
}

/** Starts the logs SDK with a batch processor exporting to `<endpoint>/v1/logs`. */
export function startLogExport({ endpoint, resource }: { endpoint: string; resource: Resource }): LogExport {
  const provider = new LoggerProvider({
    resource,
    processors: [
      new BatchLogRecordProcessor({
        // A dead collector costs a shutdown at most these few seconds, well inside compose's
        // 20 s grace period, instead of the exporter's default 10 s per batch.
        exporter: new OTLPLogExporter({ url: `${endpoint.replace(/\/$/, "")}/v1/logs`, timeoutMillis: 3_000 }),
        // As for spans: small batches sent often, so a line shows up in Loki next to its trace.
        scheduledDelayMillis: 500,
        maxExportBatchSize: 256,
        exportTimeoutMillis: 3_000,
      }),
    ],
  });
  const logger = provider.getLogger("bazaar");
  return {
    emit({ level, msg, fields, time, context }) {
      logger.emit({
        timestamp: time,
        severityNumber: severity[level],
        severityText: level.toUpperCase(),
        body: msg,
        attributes: logAttributes(fields),
        context,
      });
    },
    shutdown: () => provider.shutdown().catch(() => {}),
  };
}
