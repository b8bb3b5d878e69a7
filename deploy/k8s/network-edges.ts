// biome-ignore-all lint/suspicious/noExplicitAny: rendered manifests are untyped documents whose shape is what this reads.
/**
 * The network edges of Bazaar: what the NetworkPolicies should allow (from the service catalog's
 * dependencies and the gateway's clusters) and what a rendered set of manifests does allow (read
 * as Kubernetes reads NetworkPolicies: default deny, rules additive, peers by pod labels).
 */
import { readFileSync } from "node:fs";
import { parse } from "yaml";
import { type Dependency, dependenciesOf, serviceCatalog, type ServiceEntry } from "@bazaar/platform/service-catalog";

const envoyFile = new URL("../../gateway/envoy.yaml", import.meta.url).pathname;
const catalog = serviceCatalog as readonly ServiceEntry[];

/** gatewayDependencies' answers by config text: envoy.yaml's many aliases make each parse take about a second. */
const dependenciesByConfig = new Map<string, readonly Dependency[]>();

/** What the gateway dials, read from its clusters in gateway/envoy.yaml: catalog processes, and Jaeger (OTLP/gRPC, spans). */
export function gatewayDependencies(envoyYaml: string = readFileSync(envoyFile, "utf8")): Dependency[] {
  let found = dependenciesByConfig.get(envoyYaml);
  if (!found) {
    found = readGatewayDependencies(envoyYaml);
    dependenciesByConfig.set(envoyYaml, found);
  }
  return [...found];
}

function readGatewayDependencies(envoyYaml: string): Dependency[] {
  const config = parse(envoyYaml) as any;
  const out: Dependency[] = [];
  for (const cluster of config.static_resources.clusters as any[]) {
    for (const group of cluster.load_assignment?.endpoints ?? []) {
      for (const lb of group.lb_endpoints) {
        const { address, port_value: port } = lb.endpoint.address.socket_address;
        if (address === "127.0.0.1") continue;
        if (catalog.some((s) => s.name === address)) out.push({ peer: address, port });
        else if (address === "jaeger") out.push({ infrastructure: "otlp", port });
        else throw new Error(`gateway/envoy.yaml's cluster ${cluster.name} dials ${address}, which is neither a catalog process nor Jaeger`);
      }
    }
  }
  return out;
}

/** One allowed connection: from a pod (by its app.kubernetes.io/name) to a pod or `external`, on a port. */
export type Edge = `${string} -> ${string}:${number}`;

interface Pod {
  name: string;
  labels: Record<string, string>;
  namespace: string;
}

const workloadKinds = new Set(["Deployment", "StatefulSet", "DaemonSet"]);

function podsOf(docs: any[]): Pod[] {
  return docs
    .filter((d) => workloadKinds.has(d.kind))
    .map((d) => ({
      name: d.spec.template.metadata.labels["app.kubernetes.io/name"],
      labels: d.spec.template.metadata.labels,
      namespace: d.metadata.namespace ?? "",
    }));
}

function matchesSelector(selector: any, labels: Record<string, string>): boolean {
  for (const [k, v] of Object.entries(selector?.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const e of selector?.matchExpressions ?? []) {
    const has = e.key in labels;
    if (e.operator === "In" && !(has && e.values.includes(labels[e.key]))) return false;
    if (e.operator === "NotIn" && has && e.values.includes(labels[e.key])) return false;
    if (e.operator === "Exists" && !has) return false;
    if (e.operator === "DoesNotExist" && has) return false;
  }
  return true;
}

/** The names a rule's peers stand for: pods of the namespace, `kube-dns`, `external` (an ipBlock), or `any` (no peers: everyone). */
function peersOf(peers: any[] | undefined, pods: Pod[]): string[] {
  if (!peers || peers.length === 0) return ["any"];
  const out = new Set<string>();
  for (const p of peers) {
    if (p.ipBlock) out.add("external");
    else if (p.namespaceSelector) out.add(p.podSelector?.matchLabels?.["k8s-app"] === "kube-dns" ? "kube-dns" : "other-namespace");
    else for (const pod of pods) if (matchesSelector(p.podSelector, pod.labels)) out.add(pod.name);
  }
  return [...out];
}

function portsOf(rule: any): number[] {
  if (!rule.ports?.length) return [0];
  return rule.ports.map((p: any) => {
    if (typeof p.port !== "number" || p.endPort !== undefined) throw new Error(`a NetworkPolicy port must be one number, got ${JSON.stringify(p)}`);
    return p.port;
  });
}

/**
 * The edges a rendered manifest set allows, each direction apart. An edge needs both: the
 * source's egress and the destination's ingress (unless the destination is outside the cluster).
 */
export function allowedEdges(docs: any[]): { egress: Set<Edge>; ingress: Set<Edge> } {
  const pods = podsOf(docs);
  const egress = new Set<Edge>();
  const ingress = new Set<Edge>();
  for (const policy of docs.filter((d) => d.kind === "NetworkPolicy")) {
    const selected = pods.filter((p) => matchesSelector(policy.spec.podSelector, p.labels));
    for (const rule of policy.spec.egress ?? [])
      for (const to of peersOf(rule.to, pods)) for (const port of portsOf(rule)) for (const from of selected) egress.add(`${from.name} -> ${to}:${port}`);
    for (const rule of policy.spec.ingress ?? [])
      for (const from of peersOf(rule.from, pods)) for (const port of portsOf(rule)) for (const to of selected) ingress.add(`${from} -> ${to.name}:${port}`);
  }
  return { egress, ingress };
}

/** What differs between two edge sets: edges expected and not allowed, and allowed and not expected. */
export function edgeDifference(expected: Set<Edge>, actual: Set<Edge>): { missing: Edge[]; extra: Edge[] } {
  return { missing: [...expected].filter((e) => !actual.has(e)).sort(), extra: [...actual].filter((e) => !expected.has(e)).sort() };
}

/** Monitoring edges the optional components add: Prometheus scrapes each pod's metrics port, Grafana queries Prometheus. */
export interface ExpectedOptions {
  /** Metrics ports Prometheus scrapes, by pod name, when the prometheus component is in. */
  scrapes?: Record<string, number>;
  grafana?: boolean;
}

/**
 * The edges the NetworkPolicies must allow for a rendered manifest set, from the catalog's
 * dependencies and the gateway's clusters: infrastructure is the pod that carries the
 * infrastructure label, or `external` when the overlay runs none.
 */
export function expectedEdges(docs: any[], options: ExpectedOptions = {}): { egress: Set<Edge>; ingress: Set<Edge> } {
  const pods = podsOf(docs);
  const infraPod = (kind: string) => pods.find((p) => p.labels["bazaar.dev/infrastructure"] === kind)?.name ?? "external";
  const target = (d: Dependency) => ("peer" in d ? d.peer : infraPod(d.infrastructure));
  const egress = new Set<Edge>();
  const ingress = new Set<Edge>();
  const edge = (from: string, to: string, port: number) => {
    egress.add(`${from} -> ${to}:${port}`);
    if (to !== "external") ingress.add(`${from} -> ${to}:${port}`);
  };
  for (const entry of catalog) for (const d of dependenciesOf(entry)) edge(entry.name, target(d), d.port);
  for (const d of gatewayDependencies()) edge("gateway", target(d), d.port);
  for (const pod of pods) {
    egress.add(`${pod.name} -> kube-dns:53`);
  }
  ingress.add("any -> gateway:8080");
  ingress.add("any -> gateway:8443");
  if (options.scrapes) {
    for (const [name, port] of Object.entries(options.scrapes)) edge("prometheus", name, port);
    egress.add("prometheus -> external:443");
    egress.add("prometheus -> external:6443");
  }
  if (options.grafana) edge("grafana", "prometheus", 9090);
  return { egress, ingress };
}
