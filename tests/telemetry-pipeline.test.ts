import { describe, expect, test } from "bun:test";
import { parse } from "yaml";
import { serviceCatalog } from "@bazaar/platform/service-catalog";
import { run } from "./support/compose.ts";

// The telemetry path of compose.yaml, checked as far as this machine allows (it has neither the
// collector's binary nor Loki's; where one is installed, its own check runs too): every process
// sends OTLP to the collector, the collector's configuration is wired completely and sends
// spans to Jaeger and log records to Loki at addresses compose.yaml has, and Loki's has what
// Loki 3 needs to run as one process on the local filesystem with retention.

const root = new URL("..", import.meta.url).pathname;
// biome-ignore lint/suspicious/noExplicitAny: compose.yaml parsed as an untyped document whose shape is what these tests check.
const compose = parse(await Bun.file(`${root}compose.yaml`).text(), { merge: true }) as { services: Record<string, any>; volumes: Record<string, unknown> };
const collectorFile = `${root}deploy/otel-collector/config.yaml`;
const lokiFile = `${root}deploy/loki/config.yaml`;

interface Pipeline {
  receivers?: string[];
  processors?: string[];
  exporters?: string[];
}
interface CollectorConfig {
  extensions?: Record<string, { endpoint?: string } | null>;
  receivers?: Record<string, { protocols?: Record<string, { endpoint?: string } | null> } | null>;
  processors?: Record<string, Record<string, unknown> | null>;
  exporters?: Record<string, { endpoint?: string; tls?: { insecure?: boolean } } | null>;
  connectors?: Record<string, unknown>;
  service: { extensions?: string[]; pipelines: Record<string, Pipeline> };
}
const collector = parse(await Bun.file(collectorFile).text()) as CollectorConfig;
// biome-ignore lint/suspicious/noExplicitAny: Loki's configuration parsed as an untyped document whose shape is what these tests check.
const loki = parse(await Bun.file(lokiFile).text()) as Record<string, any>;

const collectorService = "otel-collector";

/** The `host` and `port` of an endpoint written `host:port` or as a URL. */
function address(endpoint: string): { host: string; port: number; path: string } {
  const url = new URL(endpoint.includes("://") ? endpoint : `tcp://${endpoint}`);
  return { host: url.hostname, port: Number(url.port), path: url.pathname };
}

/** The ports a compose service listens on for its peers: what it exposes and the container side of what it publishes. */
function portsOf(service: string): number[] {
  const s = compose.services[service];
  if (!s) throw new Error(`compose.yaml has no service ${service}`);
  const published = ((s.ports ?? []) as string[]).map((p) => Number(p.split(":").at(-1)));
  return [...((s.expose ?? []) as string[]).map(Number), ...published];
}

/** What a service mounts at `target`: a path relative to the repository, or a volume's name. */
function mountAt(service: string, target: string): string | undefined {
  const volume = (compose.services[service].volumes as string[]).find((v) => v.split(":")[1] === target);
  return volume?.split(":")[0];
}

/** A component's type: the part of its id before the slash (`otlp_http/loki` → `otlp_http`). */
const typeOf = (id: string) => id.split("/")[0]!;

describe("compose.yaml's telemetry path", () => {
  test("every process sends its spans and logs to the collector's OTLP/HTTP port, unless the environment says otherwise", () => {
    const http = address(collector.receivers?.otlp?.protocols?.http?.endpoint ?? "");
    for (const entry of serviceCatalog) {
      const endpoint = compose.services[entry.name].environment.OTEL_EXPORTER_OTLP_ENDPOINT as string;
      expect(endpoint, entry.name).toBe(`\${OTEL_EXPORTER_OTLP_ENDPOINT-http://${collectorService}:${http.port}}`);
    }
    expect(portsOf(collectorService)).toContain(http.port);
  });

  test("runs the collector and Loki with the committed configurations, in the observability profile with Jaeger and Grafana", () => {
    const otel = compose.services[collectorService];
    const configPath = (otel.command as string[]).find((a) => a.startsWith("--config="))?.slice("--config=".length);
    expect(configPath).toBeDefined();
    expect(mountAt(collectorService, configPath!)).toBe("./deploy/otel-collector/config.yaml");
    const lokiConfigPath = (compose.services.loki.command as string[]).find((a) => a.startsWith("-config.file="))?.slice("-config.file=".length);
    expect(mountAt("loki", lokiConfigPath!)).toBe("./deploy/loki/config.yaml");
    for (const name of [collectorService, "loki", "jaeger", "grafana"]) expect(compose.services[name].profiles, name).toEqual(["observability"]);
    // The collector starts once both of its backends take data.
    expect(otel.depends_on).toEqual({ jaeger: { condition: "service_healthy" }, loki: { condition: "service_healthy" } });
    // Loki's container healthcheck asks the port it listens on.
    expect(compose.services.loki.healthcheck.test.join(" ")).toContain(`http://127.0.0.1:${loki.server.http_listen_port}/ready`);
    // The container's root is read-only: everything Loki writes is on its volume.
    expect(compose.services.loki.read_only).toBe(true);
    expect(mountAt("loki", loki.common.path_prefix)).toBe("loki-data");
    expect(compose.volumes).toHaveProperty("loki-data");
  });
});

describe("the collector's configuration", () => {
  const { pipelines } = collector.service;
  const sections = ["receivers", "processors", "exporters"] as const;

  test("every pipeline uses only components that are defined, and has at least one receiver and exporter", () => {
    expect(Object.keys(pipelines).sort()).toEqual(["logs", "traces"]);
    for (const [name, pipeline] of Object.entries(pipelines)) {
      expect(pipeline.receivers?.length, `${name} has no receiver`).toBeGreaterThan(0);
      expect(pipeline.exporters?.length, `${name} has no exporter`).toBeGreaterThan(0);
      for (const section of sections) {
        for (const id of pipeline[section] ?? []) expect(Object.keys(collector[section] ?? {}), `${name}'s ${section}`).toContain(id);
      }
    }
    for (const id of collector.service.extensions ?? []) expect(Object.keys(collector.extensions ?? {})).toContain(id);
  });

  test("every component that is defined is used, the health_check extension among them", () => {
    for (const section of sections) {
      const used = new Set(Object.values(pipelines).flatMap((p) => p[section] ?? []));
      for (const id of Object.keys(collector[section] ?? {})) expect(used.has(id), `${section}.${id} is defined but in no pipeline`).toBe(true);
    }
    expect(collector.connectors).toBeUndefined();
    expect(Object.keys(collector.extensions ?? {}).sort()).toEqual([...(collector.service.extensions ?? [])].sort());
    expect(collector.service.extensions).toContain("health_check");
    expect(portsOf(collectorService)).toContain(address(collector.extensions?.health_check?.endpoint ?? "").port);
  });

  test("every pipeline limits memory first and batches last", () => {
    for (const [name, pipeline] of Object.entries(pipelines)) {
      const types = (pipeline.processors ?? []).map(typeOf);
      expect(types[0], name).toBe("memory_limiter");
      expect(types.at(-1), name).toBe("batch");
    }
    // The limit leaves room under the container's.
    const limitMib = Number(collector.processors?.memory_limiter?.limit_mib);
    expect(limitMib).toBeGreaterThan(0);
    expect(limitMib).toBeLessThan(Number.parseInt(compose.services[collectorService].mem_limit, 10));
  });

  test("receives OTLP on the standard ports, which compose.yaml exposes", () => {
    const protocols = collector.receivers?.otlp?.protocols ?? {};
    expect(address(protocols.grpc?.endpoint ?? "").port).toBe(4317);
    expect(address(protocols.http?.endpoint ?? "").port).toBe(4318);
    // Listening on every interface of the container, so the other containers reach it.
    for (const p of Object.values(protocols)) expect(address(p?.endpoint ?? "").host).toBe("0.0.0.0");
    expect(portsOf(collectorService)).toEqual(expect.arrayContaining([4317, 4318]));
  });

  test("sends spans to Jaeger over OTLP gRPC and log records to Loki's OTLP endpoint, at services and ports compose.yaml has", () => {
    const only = (pipeline: Pipeline) => {
      expect(pipeline.exporters?.length).toBe(1);
      const id = pipeline.exporters![0]!;
      return { id, type: typeOf(id), endpoint: address(collector.exporters?.[id]?.endpoint ?? "") };
    };
    const traces = only(pipelines.traces!);
    expect(traces.type).toBe("otlp_grpc");
    expect(traces.endpoint.host).toBe("jaeger");
    expect(portsOf("jaeger")).toContain(traces.endpoint.port);
    expect(collector.exporters?.[traces.id]?.tls?.insecure).toBe(true);

    const logs = only(pipelines.logs!);
    expect(logs.type).toBe("otlp_http");
    expect(logs.endpoint.host).toBe("loki");
    expect(logs.endpoint.port).toBe(loki.server.http_listen_port);
    expect(portsOf("loki")).toContain(logs.endpoint.port);
    // Loki 3's OTLP ingestion is at /otlp; the exporter appends /v1/logs.
    expect(logs.endpoint.path).toBe("/otlp");
  });

  const otelcol = Bun.which("otelcol-contrib");
  test.skipIf(!otelcol)("is valid for the collector (otelcol-contrib validate, where it is installed)", async () => {
    await run([otelcol!, "validate", `--config=${collectorFile}`], { timeoutMs: 30_000 });
  });
});

describe("Loki's configuration", () => {
  test("runs as one process with one tenant and an in-memory ring, which needs no peers", () => {
    // Only blocks Loki 3 knows, so a misspelt one shows here rather than at start-up.
    const known = [
      "auth_enabled",
      "server",
      "common",
      "schema_config",
      "storage_config",
      "limits_config",
      "compactor",
      "ingester",
      "querier",
      "query_range",
      "ruler",
      "frontend",
      "pattern_ingester",
      "analytics",
      "target",
    ];
    for (const key of Object.keys(loki)) expect(known, `unknown top-level block ${key}`).toContain(key);
    expect(loki.target ?? "all").toBe("all");
    expect(loki.auth_enabled).toBe(false);
    expect(loki.common.replication_factor).toBe(1);
    expect(loki.common.ring.kvstore.store).toBe("inmemory");
    expect(typeof loki.server.http_listen_port).toBe("number");
    expect(typeof loki.server.grpc_listen_port).toBe("number");
  });

  test("keeps its index and chunks on the filesystem under its volume, with a schema OTLP ingestion accepts", () => {
    const prefix = loki.common.path_prefix as string;
    const { chunks_directory, rules_directory } = loki.common.storage.filesystem;
    for (const dir of [chunks_directory, rules_directory, loki.compactor.working_directory]) expect(dir).toStartWith(`${prefix}/`);
    const schemas = loki.schema_config.configs as {
      from: string;
      store: string;
      object_store: string;
      schema: string;
      index: { prefix: string; period: string };
    }[];
    expect(schemas.length).toBeGreaterThan(0);
    for (const s of schemas) expect(Number.isNaN(Date.parse(s.from))).toBe(false);
    // The newest schema is the one written to: TSDB, schema v13 (structured metadata, which
    // OTLP ingestion stores its attributes in), 24 h index tables (retention needs them).
    const current = schemas.at(-1)!;
    expect(current).toMatchObject({ store: "tsdb", object_store: "filesystem", schema: "v13", index: { period: "24h" } });
    expect(current.index.prefix.length).toBeGreaterThan(0);
    expect(Date.parse(current.from)).toBeLessThan(Date.now());
    expect(loki.limits_config.allow_structured_metadata ?? true).toBe(true);
  });

  test("deletes logs past their retention period: the compactor applies it and has its delete-request store", () => {
    expect(loki.compactor.retention_enabled).toBe(true);
    expect(loki.compactor.delete_request_store).toBe("filesystem");
    const period = /^(\d+)h$/.exec(loki.limits_config.retention_period);
    expect(period, "retention_period in hours").not.toBeNull();
    // At least a day: retention works in whole index tables.
    expect(Number(period![1])).toBeGreaterThanOrEqual(24);
  });

  const lokiBinary = Bun.which("loki");
  test.skipIf(!lokiBinary)("is valid for Loki (loki -verify-config, where it is installed)", async () => {
    await run([lokiBinary!, `-config.file=${lokiFile}`, "-verify-config"], { timeoutMs: 30_000 });
  });
});
