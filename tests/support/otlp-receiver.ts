/**
 * A minimal OTLP/HTTP receiver for tests (what the collector's port 4318 does): accepts
 * `POST /v1/traces` and `POST /v1/logs` as OTLP JSON and keeps every span and log record with
 * its resource's service.name.
 */
/** OTLP's numbers of the span kinds, as {@link ReceivedSpan.kind} holds them. */
export const spanKinds = { SERVER: 2, CLIENT: 3, PRODUCER: 4, CONSUMER: 5 } as const;

export interface ReceivedSpan {
  service: string;
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  kind: number;
  attributes: Record<string, unknown>;
  status: { code?: number; message?: string };
  /** The spans it links to. */
  links: { traceId: string; spanId: string }[];
}

/** A log record as received. */
export interface ReceivedLogRecord {
  service: string;
  /** Empty when the record was written outside any span. */
  traceId: string;
  spanId: string;
  severityNumber: number;
  severityText: string;
  body: unknown;
  attributes: Record<string, unknown>;
  /** Milliseconds since the epoch. */
  time: number;
}

interface OtlpValue {
  stringValue?: string;
  intValue?: string | number;
  boolValue?: boolean;
  doubleValue?: number;
  arrayValue?: { values?: OtlpValue[] };
  kvlistValue?: { values?: OtlpAttribute[] };
}
interface OtlpAttribute {
  key: string;
  value: OtlpValue;
}
interface OtlpExport {
  resourceSpans?: {
    resource?: { attributes?: OtlpAttribute[] };
    scopeSpans?: {
      spans?: {
        traceId: string;
        spanId: string;
        parentSpanId?: string;
        name: string;
        kind: number;
        attributes?: OtlpAttribute[];
        status?: { code?: number; message?: string };
        links?: { traceId: string; spanId: string }[];
      }[];
    }[];
  }[];
}

interface OtlpLogsExport {
  resourceLogs?: {
    resource?: { attributes?: OtlpAttribute[] };
    scopeLogs?: {
      logRecords?: {
        timeUnixNano?: string | number;
        severityNumber?: number;
        severityText?: string;
        body?: OtlpValue;
        attributes?: OtlpAttribute[];
        traceId?: string;
        spanId?: string;
      }[];
    }[];
  }[];
}

function value(v: OtlpValue = {}): unknown {
  if (v.arrayValue) return (v.arrayValue.values ?? []).map(value);
  if (v.kvlistValue) return attributes(v.kvlistValue.values);
  return v.stringValue ?? (v.intValue !== undefined ? Number(v.intValue) : undefined) ?? v.boolValue ?? v.doubleValue;
}

function attributes(list: OtlpAttribute[] = []): Record<string, unknown> {
  return Object.fromEntries(list.map((a) => [a.key, value(a.value)]));
}

/** Starts the receiver on a free port. */
export function startOtlpReceiver() {
  const spans: ReceivedSpan[] = [];
  const problems: string[] = [];
  const logs: ReceivedLogRecord[] = [];
  const serviceOf = (resource?: { attributes?: OtlpAttribute[] }) => String(attributes(resource?.attributes)["service.name"] ?? "");

  function receiveSpans(body: OtlpExport): void {
    for (const rs of body.resourceSpans ?? []) {
      const service = serviceOf(rs.resource);
      for (const ss of rs.scopeSpans ?? []) {
        for (const s of ss.spans ?? []) {
          spans.push({
            service,
            traceId: s.traceId,
            spanId: s.spanId,
            parentSpanId: s.parentSpanId ?? "",
            name: s.name,
            kind: s.kind,
            attributes: attributes(s.attributes),
            status: s.status ?? {},
            links: (s.links ?? []).map((l) => ({ traceId: l.traceId, spanId: l.spanId })),
          });
        }
      }
    }
  }

  function receiveLogs(body: OtlpLogsExport): void {
    for (const rl of body.resourceLogs ?? []) {
      const service = serviceOf(rl.resource);
      for (const sl of rl.scopeLogs ?? []) {
        for (const r of sl.logRecords ?? []) {
          logs.push({
            service,
            traceId: r.traceId ?? "",
            spanId: r.spanId ?? "",
            severityNumber: r.severityNumber ?? 0,
            severityText: r.severityText ?? "",
            body: value(r.body),
            attributes: attributes(r.attributes),
            time: Number(BigInt(r.timeUnixNano ?? 0) / 1_000_000n),
          });
        }
      }
    }
  }

  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      const url = new URL(req.url);
      const signal = url.pathname === "/v1/traces" ? "traces" : url.pathname === "/v1/logs" ? "logs" : undefined;
      if (req.method !== "POST" || !signal) return new Response("not found", { status: 404 });
      const type = req.headers.get("content-type") ?? "";
      if (!type.includes("application/json")) {
        problems.push(`unexpected content-type ${type} on ${url.pathname}`);
        return new Response("only OTLP JSON here", { status: 415 });
      }
      if (signal === "traces") receiveSpans((await req.json()) as OtlpExport);
      else receiveLogs((await req.json()) as OtlpLogsExport);
      return Response.json({ partialSuccess: {} });
    },
  });
  return {
    endpoint: `http://127.0.0.1:${server.port}`,
    spans,
    logs,
    problems,
    stop: () => server.stop(true),
  };
}
