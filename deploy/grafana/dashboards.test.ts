// biome-ignore-all lint/suspicious/noExplicitAny: these tests walk parsed dashboards and provisioning files, untyped documents whose shape is what they check.
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { parse } from "yaml";
import { serviceCatalog } from "@bazaar/platform/service-catalog";
import { dashboardsDir, dashboards, dashboardText } from "./generate.ts";

// The committed dashboards are the generator's output, well-formed, and wired to what Grafana is
// given: the provisioning files and compose.yaml's mounts. tests/dashboards.test.ts runs their
// queries against a real Prometheus.

const root = new URL("../../", import.meta.url).pathname;
const readFileText = (path: string) => readFileSync(path, "utf8");
const committed = Object.fromEntries(
  readdirSync(dashboardsDir)
    .filter((f) => f.endsWith(".json"))
    .map((f) => [f, JSON.parse(readFileText(`${dashboardsDir}${f}`))]),
) as Record<string, any>;
const datasources = parse(readFileText(`${root}deploy/grafana/provisioning/datasources/datasources.yml`)).datasources as any[];
const providers = parse(readFileText(`${root}deploy/grafana/provisioning/dashboards/bazaar.yml`)).providers as any[];
const compose = parse(readFileText(`${root}compose.yaml`));

/** Every datasource reference of a dashboard: panels' and targets' and variables'. */
function datasourceRefs(d: any): { uid: string; type: string; where: string }[] {
  const refs: { uid: string; type: string; where: string }[] = [];
  for (const p of d.panels) {
    refs.push({ ...p.datasource, where: `${d.uid}/${p.title}` });
    for (const t of p.targets) refs.push({ ...t.datasource, where: `${d.uid}/${p.title}/${t.refId}` });
  }
  for (const v of d.templating.list) if (v.datasource) refs.push({ ...v.datasource, where: `${d.uid}/$${v.name}` });
  return refs;
}

describe("deploy/grafana/dashboards", () => {
  test("are what `bun run generate:dashboards` makes from the service catalog", async () => {
    const generated = dashboards();
    expect(Object.keys(committed).sort(), "a dashboard file is missing or extra: run `bun run generate:dashboards`").toEqual(Object.keys(generated).sort());
    for (const [file, d] of Object.entries(generated)) {
      expect(readFileText(`${dashboardsDir}${file}`), `${file} is stale: run \`bun run generate:dashboards\` and commit it`).toBe(dashboardText(d));
    }
  });

  test("give every process of the catalog a dashboard of its own, beside the overview, saga, messaging, cache and gateway ones", () => {
    const uids = Object.values(committed).map((d) => d.uid);
    for (const entry of serviceCatalog) expect(uids).toContain(`bazaar-${entry.name}`);
    for (const uid of ["bazaar-overview", "bazaar-checkout-saga", "bazaar-messaging", "bazaar-cache", "bazaar-gateway"]) expect(uids).toContain(uid);
  });

  test("have unique uids, unique panel ids and titles within each, schemaVersion ≥ 39, timeseries and stat panels only", () => {
    const uids = Object.values(committed).map((d) => d.uid);
    expect(new Set(uids).size).toBe(uids.length);
    for (const d of Object.values(committed)) {
      expect(d.schemaVersion).toBeGreaterThanOrEqual(39);
      const ids = d.panels.map((p: any) => p.id);
      expect(new Set(ids).size, `${d.uid} repeats a panel id`).toBe(ids.length);
      const titles = d.panels.map((p: any) => p.title);
      expect(new Set(titles).size, `${d.uid} repeats a panel title`).toBe(titles.length);
      for (const p of d.panels) {
        expect(["timeseries", "stat"]).toContain(p.type);
        expect(p.description, `${d.uid}/${p.title} has no description`).toBeTruthy();
        expect(p.targets.length, `${d.uid}/${p.title} has no query`).toBeGreaterThan(0);
        expect(p.gridPos.x + p.gridPos.w).toBeLessThanOrEqual(24);
      }
    }
  });

  test("name only datasources the provisioning file defines, by uid and type", () => {
    const byUid = new Map(datasources.map((ds) => [ds.uid, ds.type]));
    for (const d of Object.values(committed)) {
      for (const ref of datasourceRefs(d)) {
        expect(byUid.has(ref.uid), `${ref.where} names datasource ${ref.uid}, which is not provisioned`).toBe(true);
        expect(byUid.get(ref.uid), ref.where).toBe(ref.type);
      }
    }
  });

  test("show exemplars on every latency (histogram quantile) query", () => {
    for (const d of Object.values(committed)) {
      for (const p of d.panels) {
        for (const t of p.targets) if (t.expr.includes("histogram_quantile")) expect(t.exemplar, `${d.uid}/${p.title}/${t.refId}`).toBe(true);
      }
    }
  });
});

describe("Grafana provisioning", () => {
  test("datasources: Prometheus's exemplars link to Jaeger, Jaeger's spans to Loki, Loki's trace_id to Jaeger", () => {
    const ds = (uid: string) => datasources.find((d) => d.uid === uid);
    expect(ds("prometheus")).toMatchObject({ type: "prometheus", url: "http://prometheus:9090" });
    expect(ds("prometheus").jsonData.exemplarTraceIdDestinations).toEqual([{ name: "trace_id", datasourceUid: "jaeger" }]);
    expect(ds("jaeger")).toMatchObject({ type: "jaeger", url: "http://jaeger:16686" });
    expect(ds("jaeger").jsonData.tracesToLogsV2.datasourceUid).toBe("loki");
    expect(ds("loki")).toMatchObject({ type: "loki", url: "http://loki:3100" });
    const derived = ds("loki").jsonData.derivedFields[0];
    expect(derived.datasourceUid).toBe("jaeger");
    // A log line as platform/src/log.ts writes it: the regex finds its trace id.
    const line = JSON.stringify({ level: "info", msg: "served", trace_id: "4bf92f3577b34da6a3ce929d0e0e4736", span_id: "00f067aa0ba902b7" });
    expect(new RegExp(derived.matcherRegex).exec(line)?.[1]).toBe("4bf92f3577b34da6a3ce929d0e0e4736");
  });

  test("dashboards: the file provider reads the folder compose.yaml mounts the committed JSON at", () => {
    const volumes: string[] = compose.services.grafana.volumes;
    const mount = volumes.map((v) => v.split(":")).find(([src]) => src === "./deploy/grafana/dashboards");
    expect(mount, "compose.yaml does not mount deploy/grafana/dashboards into grafana").toBeDefined();
    expect(providers.map((p) => p.options.path)).toEqual([mount![1]]);
    expect(providers[0].type).toBe("file");
  });
});
