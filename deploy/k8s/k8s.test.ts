// biome-ignore-all lint/suspicious/noExplicitAny: rendered manifests are untyped documents whose shape is what these tests check.
import { describe, expect, test } from "bun:test";
import * as models from "@kubernetes/client-node";
import { parseAllDocuments } from "yaml";
import { reconnectBackoffMaxMs } from "@bazaar/platform/grpc/client";
import { metricsPortOf, serviceCatalog, type ServiceEntry } from "@bazaar/platform/service-catalog";
import { gatewayPorts } from "../../gateway/envoy-config.ts";
import { images, k8sFiles, shutdown, terminationGracePeriodSeconds } from "./generate.ts";
import { allowedEdges, edgeDifference, expectedEdges } from "./network-edges.ts";

// deploy/k8s is generated from the service catalog, renders with kustomize, validates against
// the Kubernetes API schema (unknown fields included), and every workload, Service and
// NetworkPolicy agrees with the catalog. No cluster runs here: README's "Kubernetes" says how.

const here = new URL(".", import.meta.url).pathname;
const catalog = serviceCatalog as readonly ServiceEntry[];
const overlays = ["local", "production"] as const;

function kustomize(dir: string): any[] {
  if (!Bun.which("kubectl"))
    throw new Error("kubectl is not installed: these tests render deploy/k8s with `kubectl kustomize` (kubectl v1.32+, kustomize v5.5+)");
  const result = Bun.spawnSync(["kubectl", "kustomize", dir], { stderr: "pipe" });
  if (result.exitCode !== 0) throw new Error(`kubectl kustomize ${dir} failed: ${result.stderr.toString()}`);
  return parseAllDocuments(result.stdout.toString()).map((d) => d.toJS());
}

const rendered = Object.fromEntries(overlays.map((o) => [o, kustomize(`${here}overlays/${o}`)])) as Record<(typeof overlays)[number], any[]>;
const workloads = (docs: any[]) => docs.filter((d) => ["Deployment", "StatefulSet"].includes(d.kind));

/** The client-node model of a kind: apps/v1 Deployment is V1Deployment. */
function modelOf(apiVersion: string, kind: string): any {
  const version = apiVersion.split("/").pop()!;
  const model = (models as any)[`${version[0]!.toUpperCase()}${version.slice(1)}${kind}`];
  if (!model?.getAttributeTypeMap) throw new Error(`no model for ${apiVersion} ${kind}`);
  return model;
}

/** Fields no schema of the model knows, recursively, by path (client-node's attributeTypeMap per model). */
export function unknownFields(value: any, type: string, path: string): string[] {
  if (value === null || value === undefined || typeof value !== "object") return [];
  const array = /^Array<(.+)>$/.exec(type);
  if (array) return (value as any[]).flatMap((v, i) => unknownFields(v, array[1]!, `${path}[${i}]`));
  const map = /^\{ \[key: string\]: (.+); \}$/.exec(type);
  if (map) return Object.entries(value).flatMap(([k, v]) => unknownFields(v, map[1]!, `${path}.${k}`));
  const model = (models as any)[type];
  if (!model?.getAttributeTypeMap) return [];
  const attributes = model.getAttributeTypeMap() as { baseName: string; type: string }[];
  return Object.entries(value).flatMap(([k, v]) => {
    const attribute = attributes.find((a) => a.baseName === k);
    return attribute ? unknownFields(v, attribute.type, `${path}.${k}`) : [`${path}.${k}`];
  });
}

/** Validates a document against kubernetes-models' JSON schema (types, required fields, formats) for its kind and version. */
async function validateSchema(doc: any): Promise<void> {
  const [group, version] = doc.apiVersion.includes("/") ? doc.apiVersion.split("/") : ["", doc.apiVersion];
  const module = await import(`kubernetes-models/${group ? `${group}/` : ""}${version}/${doc.kind}`);
  new module[doc.kind](doc).validate();
}

describe("deploy/k8s", () => {
  test("is what `bun run generate:k8s` makes from the service catalog", async () => {
    for (const [path, text] of Object.entries(await k8sFiles())) {
      expect(await Bun.file(`${here}${path}`).text(), `deploy/k8s/${path} is stale: run \`bun run generate:k8s\` and commit it`).toBe(text);
    }
  });

  test("the unknown-field check rejects a misspelt or misplaced field, deep in a pod spec", () => {
    const deployment = structuredClone(workloads(rendered.local)[0]);
    expect(unknownFields(deployment, "V1Deployment", "")).toEqual([]);
    deployment.spec.template.spec.containers[0].readinessProbe.grcp = { port: 1 };
    deployment.spec.template.spec.securityContext.readOnlyRootFilesystem = true;
    expect(unknownFields(deployment, "V1Deployment", "")).toEqual([
      ".spec.template.spec.containers[0].readinessProbe.grcp",
      ".spec.template.spec.securityContext.readOnlyRootFilesystem",
    ]);
  });

  test("the schema check rejects a wrong type and a missing required field", async () => {
    const deployment = structuredClone(workloads(rendered.local)[0]);
    await validateSchema(deployment);
    deployment.spec.template.spec.containers[0].ports[0].containerPort = "fifty";
    await expect(validateSchema(deployment)).rejects.toThrow("containerPort must be integer");
    const service = structuredClone(rendered.local.find((d) => d.kind === "Service"));
    delete service.spec.ports[0].port;
    await expect(validateSchema(service)).rejects.toThrow("ports/0 must have required property port");
  });

  for (const overlay of overlays) {
    describe(`overlays/${overlay}`, () => {
      const docs = rendered[overlay];

      test("every document validates against the Kubernetes schema of its kind and version, unknown fields included", async () => {
        for (const doc of docs) {
          const what = `${doc.kind} ${doc.metadata.name}`;
          await validateSchema(doc).catch((err: unknown) => {
            throw new Error(`${what}: ${(err as Error).message}`);
          });
          expect(unknownFields(doc, modelOf(doc.apiVersion, doc.kind).name, ""), `${what} has fields Kubernetes does not know`).toEqual([]);
        }
      });

      test("every container has startup, readiness and liveness probes, requests and limits, and the restricted securityContext", () => {
        for (const w of workloads(docs)) {
          const pod = w.spec.template.spec;
          expect(pod.securityContext.runAsNonRoot, `${w.metadata.name}`).toBe(true);
          expect(pod.securityContext.seccompProfile).toEqual({ type: "RuntimeDefault" });
          for (const c of pod.containers) {
            const what = `${w.metadata.name}/${c.name}`;
            for (const probe of ["startupProbe", "readinessProbe", "livenessProbe"]) expect(c[probe], `${what} has no ${probe}`).toBeDefined();
            expect(Object.keys(c.resources.requests).sort(), `${what}'s requests`).toEqual(["cpu", "memory"]);
            expect(Object.keys(c.resources.limits).sort(), `${what}'s limits`).toEqual(["cpu", "memory"]);
            expect(c.securityContext, what).toEqual({
              allowPrivilegeEscalation: false,
              readOnlyRootFilesystem: true,
              runAsNonRoot: true,
              capabilities: { drop: ["ALL"] },
            });
          }
        }
      });

      test("every Bazaar process has a Deployment probed on its catalog ports, a PDB, a tokenless ServiceAccount and a drain that fits its grace period, rolled with no replica down", () => {
        for (const entry of catalog) {
          const d = docs.find((x) => x.kind === "Deployment" && x.metadata.name === entry.name);
          expect(d, `no Deployment ${entry.name}`).toBeDefined();
          const pod = d.spec.template.spec;
          const c = pod.containers[0];
          expect(c.image).toMatch(/(^|\/)bazaar:[\w.-]+$/);
          expect(c.args).toEqual([entry.name]);
          if (entry.grpcPort !== undefined) expect(c.readinessProbe.grpc).toEqual({ port: entry.grpcPort });
          else expect(c.readinessProbe.httpGet).toEqual({ path: "/healthz", port: "http" });
          expect(c.livenessProbe.httpGet.path).toBe("/livez");
          expect(pod.automountServiceAccountToken).toBe(false);
          expect(docs.find((x) => x.kind === "ServiceAccount" && x.metadata.name === entry.name)?.automountServiceAccountToken).toBe(false);
          expect(docs.some((x) => x.kind === "PodDisruptionBudget" && x.spec.selector.matchLabels["app.kubernetes.io/name"] === entry.name)).toBe(true);
          expect(pod.topologySpreadConstraints?.length).toBeGreaterThan(0);
          const drainSeconds = c.lifecycle.preStop.sleep.seconds + shutdown.drainMs / 1000 + shutdown.inFlightSeconds;
          expect(pod.terminationGracePeriodSeconds).toBeGreaterThan(drainSeconds);
          expect(pod.terminationGracePeriodSeconds).toBe(terminationGracePeriodSeconds);
          // Rolled one new pod at a time, none taken down before its replacement has been ready
          // longer than a caller's reconnect backoff (what tests/replicas.test.ts restarts by).
          expect(d.spec.strategy).toEqual({ type: "RollingUpdate", rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } });
          expect(d.spec.minReadySeconds * 1000).toBeGreaterThan(reconnectBackoffMaxMs);
        }
      });

      test("every process's Service has the catalog's name and ports, headless for gRPC", () => {
        for (const entry of catalog) {
          const s = docs.find((x) => x.kind === "Service" && x.metadata.name === entry.name);
          expect(s, `no Service ${entry.name}`).toBeDefined();
          const expected = [
            ...(entry.grpcPort !== undefined ? [entry.grpcPort] : []),
            entry.httpPort,
            ...(entry.metricsPort !== undefined ? [entry.metricsPort] : []),
          ];
          expect(s.spec.ports.map((p: any) => p.port)).toEqual(expected);
          if (entry.grpcPort !== undefined) expect(s.spec.clusterIP, `${entry.name} is not headless`).toBe("None");
          const d = docs.find((x) => x.kind === "Deployment" && x.metadata.name === entry.name);
          expect(d.spec.template.spec.containers[0].ports.map((p: any) => p.containerPort)).toEqual(expected);
        }
        const gateway = docs.find((x) => x.kind === "Service" && x.metadata.name === "gateway");
        expect(gateway.spec.type).toBe("LoadBalancer");
        expect(gateway.spec.ports.map((p: any) => p.port)).toEqual([gatewayPorts.http, gatewayPorts.https]);
      });

      test("pins every image to a tag or a digest", () => {
        for (const w of workloads(docs))
          for (const c of w.spec.template.spec.containers) {
            expect(c.image, `${w.metadata.name}'s image`).toMatch(/^[\w./-]+(:[\w.-]+|@sha256:[0-9a-f]{64})$/);
            expect(c.image).not.toEndWith(":latest");
          }
      });

      const monitoring = () => {
        const hasPod = (name: string) => workloads(docs).some((w) => w.metadata.name === name);
        const scrapes = hasPod("prometheus")
          ? Object.fromEntries([...catalog.map((e) => [e.name, metricsPortOf(e)] as const), ["gateway", gatewayPorts.ops] as const])
          : undefined;
        return { scrapes, grafana: hasPod("grafana") };
      };

      test("the NetworkPolicies deny by default and allow exactly the declared call graph", () => {
        expect(
          docs.some(
            (d) =>
              d.kind === "NetworkPolicy" &&
              Object.keys(d.spec.podSelector).length === 0 &&
              d.spec.policyTypes.length === 2 &&
              !d.spec.ingress &&
              !d.spec.egress,
          ),
        ).toBe(true);
        const expected = expectedEdges(docs, monitoring());
        const allowed = allowedEdges(docs);
        expect(edgeDifference(expected.egress, allowed.egress), "egress").toEqual({ missing: [], extra: [] });
        expect(edgeDifference(expected.ingress, allowed.ingress), "ingress").toEqual({ missing: [], extra: [] });
      });

      test("the edge check reports a policy set with one edge removed or one added", () => {
        const expected = expectedEdges(docs, monitoring());
        const removed = structuredClone(docs);
        const orders = removed.find((d) => d.kind === "NetworkPolicy" && d.metadata.name === "orders");
        const paymentsRule = orders.spec.egress.find((r: any) => r.ports[0].port === 50056);
        paymentsRule.to[0].podSelector.matchExpressions[0].values = paymentsRule.to[0].podSelector.matchExpressions[0].values.filter(
          (v: string) => v !== "payments",
        );
        expect(edgeDifference(expected.egress, allowedEdges(removed).egress)).toEqual({ missing: ["orders -> payments:50056"], extra: [] });

        const added = structuredClone(docs);
        const cart = added.find((d) => d.kind === "NetworkPolicy" && d.metadata.name === "cart");
        cart.spec.ingress[0].from[0].podSelector.matchExpressions[0].values.push("payments");
        expect(edgeDifference(expected.ingress, allowedEdges(added).ingress)).toEqual({ missing: [], extra: ["payments -> cart:50054"] });
      });
    });
  }

  test("local runs Postgres, Redis and RabbitMQ as StatefulSets with volumes, and one replica of everything", () => {
    const docs = rendered.local;
    for (const name of ["postgres", "redis", "rabbitmq"]) {
      const s = docs.find((d) => d.kind === "StatefulSet" && d.metadata.name === name);
      expect(s?.spec.volumeClaimTemplates?.length, `${name}`).toBe(1);
      expect(s.spec.template.spec.containers[0].image).toBe((images as Record<string, string>)[name]!);
    }
    for (const w of workloads(docs)) expect(w.spec.replicas, w.metadata.name).toBe(1);
    expect(docs.some((d) => d.kind === "HorizontalPodAutoscaler")).toBe(false);
  });

  test("production reaches external infrastructure, runs 3 replicas of every process with a CPU autoscaler, and brings no development secrets", () => {
    const docs = rendered.production;
    expect(docs.some((d) => d.kind === "StatefulSet")).toBe(false);
    for (const name of ["postgres", "redis", "rabbitmq", "jaeger"])
      expect(docs.find((d) => d.kind === "Service" && d.metadata.name === name)?.spec.type, name).toBe("ExternalName");
    for (const w of workloads(docs)) {
      expect(w.spec.replicas, w.metadata.name).toBe(3);
      const hpa = docs.find((d) => d.kind === "HorizontalPodAutoscaler" && d.spec.scaleTargetRef.name === w.metadata.name);
      expect(hpa?.spec.metrics[0].resource.name, `${w.metadata.name}'s autoscaler`).toBe("cpu");
      expect(hpa.spec.minReplicas).toBe(3);
    }
    expect(docs.filter((d) => d.kind === "Secret")).toEqual([]);
  });
});
