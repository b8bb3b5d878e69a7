/**
 * `bun run generate:k8s`: writes deploy/k8s's kustomize base, components and overlays from the
 * service catalog (platform/src/service-catalog.ts) and the gateway's config, so that names,
 * ports and the NetworkPolicies' edges are never typed twice. deploy/k8s/k8s.test.ts checks
 * the committed files are this script's output, renders every overlay with `kubectl kustomize`
 * and checks what comes out.
 */
import { stringify } from "yaml";
import { reconnectBackoffMaxMs } from "@bazaar/platform/grpc/client";
import { dependenciesOf, infrastructurePorts, type Infrastructure, metricsPortOf, serviceCatalog, type ServiceEntry } from "@bazaar/platform/service-catalog";
import { gatewayPorts } from "../../gateway/envoy-config.ts";
import { gatewayDependencies } from "./network-edges.ts";

const here = new URL(".", import.meta.url).pathname;
const catalog = serviceCatalog as readonly ServiceEntry[];
type Manifest = Record<string, unknown>;

/** Pinned images: the one Bazaar image (its tag set by each overlay's `images:`) and the infrastructure's (compose.yaml's). */
export const images = {
  bazaar: "bazaar",
  envoy: "envoyproxy/envoy:v1.34.1",
  postgres: "postgres:17.6-bookworm",
  redis: "redis:7.4-bookworm",
  rabbitmq: "rabbitmq:4.1-management",
  jaeger: "jaegertracing/jaeger:2.13.0",
  prometheus: "prom/prometheus:v3.4.1",
  grafana: "grafana/grafana-oss:12.0.1",
} as const;

/**
 * Shutdown timing. On SIGTERM the chassis (platform/src/service.ts) reports NOT_SERVING, waits
 * SHUTDOWN_DRAIN_MS, lets in-flight gRPC calls finish for up to 10 s (GrpcServer.shutdown's
 * graceMs), then HTTP responses for up to 5 s (ServiceHost.stopHttp), then closes its
 * connections and flushes spans. The preStop sleep comes first, so that the endpoints
 * controller and every caller's DNS drop the pod before it stops taking calls.
 */
export const shutdown = { preStopSeconds: 5, drainMs: 2000, inFlightSeconds: 10 + 5, closeSeconds: 5 } as const;
export const terminationGracePeriodSeconds = shutdown.preStopSeconds + shutdown.drainMs / 1000 + shutdown.inFlightSeconds + shutdown.closeSeconds + 3;

/**
 * How a Deployment is rolled: a new pod first (maxSurge 1, maxUnavailable 0), and the next old
 * pod taken down only once the new one has been ready for minReadySeconds, longer than a
 * caller's longest reconnect backoff ({@link reconnectBackoffMaxMs}, with DNS re-resolved at
 * most every second), so callers reach the new pod before they lose an old one. The replica
 * tests (tests/replicas.test.ts) restart replicas the same way.
 */
export const rollout = {
  minReadySeconds: Math.ceil(reconnectBackoffMaxMs / 1000) + 1,
  strategy: { type: "RollingUpdate", rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } },
} as const;

/**
 * Sized from measurement: idle, the nine processes took 779 MB RSS (about 80–90 MB each; 434 MB
 * PSS, the image's code shared), and an order costs 6–8 ms of CPU in each of orders, payments
 * and inventory. A request of 100m and 128 Mi fits an idle process with room for its caches;
 * the limit of one CPU lets a replica absorb a burst (Bun is one thread), and 256 Mi is
 * compose's mem_limit, under which the bench ran.
 */
export const processResources = { requests: { cpu: "100m", memory: "128Mi" }, limits: { cpu: "1", memory: "256Mi" } } as const;

const partOf = { "app.kubernetes.io/part-of": "bazaar" };
const labelsOf = (name: string) => ({ "app.kubernetes.io/name": name, ...partOf });
const select = (name: string) => ({ matchLabels: { "app.kubernetes.io/name": name } });
const selectAny = (names: readonly string[]) => ({ matchExpressions: [{ key: "app.kubernetes.io/name", operator: "In", values: [...names].sort() }] });
/** The label that marks infrastructure pods (in-cluster Postgres, Redis, RabbitMQ, the OTLP endpoint). */
export const infrastructureLabel = "bazaar.dev/infrastructure";

const tmpVolume = { name: "tmp", emptyDir: { medium: "Memory", sizeLimit: "16Mi" } };
const tmpMount = { name: "tmp", mountPath: "/tmp" };

const containerSecurity = {
  allowPrivilegeEscalation: false,
  readOnlyRootFilesystem: true,
  runAsNonRoot: true,
  capabilities: { drop: ["ALL"] },
};
const podSecurity = (uid: number, fsGroup?: number) => ({
  runAsNonRoot: true,
  runAsUser: uid,
  runAsGroup: uid,
  ...(fsGroup !== undefined ? { fsGroup } : {}),
  seccompProfile: { type: "RuntimeDefault" },
});
const spread = (name: string) =>
  ["kubernetes.io/hostname", "topology.kubernetes.io/zone"].map((topologyKey) => ({
    maxSkew: 1,
    topologyKey,
    whenUnsatisfiable: "ScheduleAnyway",
    labelSelector: select(name),
  }));
const pdb = (name: string): Manifest => ({
  apiVersion: "policy/v1",
  kind: "PodDisruptionBudget",
  metadata: { name, labels: labelsOf(name) },
  spec: { maxUnavailable: 1, selector: select(name) },
});
const serviceAccount = (name: string, automount = false): Manifest => ({
  apiVersion: "v1",
  kind: "ServiceAccount",
  metadata: { name, labels: labelsOf(name) },
  automountServiceAccountToken: automount,
});

function processDeployment(entry: ServiceEntry): Manifest {
  const ports = [
    ...(entry.grpcPort !== undefined ? [{ name: "grpc", containerPort: entry.grpcPort }] : []),
    { name: "http", containerPort: entry.httpPort },
    ...(entry.metricsPort !== undefined ? [{ name: "metrics", containerPort: entry.metricsPort }] : []),
  ];
  // Ready: gRPC health (NOT_SERVING while a required dependency is down or while draining), or
  // the BFF's /healthz. Alive: /livez, which answers while the process does, so an outage of
  // Postgres takes pods out of rotation without restarting them.
  const ready = entry.grpcPort !== undefined ? { grpc: { port: entry.grpcPort } } : { httpGet: { path: "/healthz", port: "http" } };
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name: entry.name, labels: labelsOf(entry.name) },
    spec: {
      replicas: 1,
      selector: select(entry.name),
      ...rollout,
      template: {
        metadata: {
          labels: labelsOf(entry.name),
          annotations: { "prometheus.io/scrape": "true", "prometheus.io/port": String(metricsPortOf(entry)), "prometheus.io/path": "/metrics" },
        },
        spec: {
          serviceAccountName: entry.name,
          automountServiceAccountToken: false,
          securityContext: podSecurity(1000),
          terminationGracePeriodSeconds,
          topologySpreadConstraints: spread(entry.name),
          containers: [
            {
              name: entry.name,
              image: images.bazaar,
              args: [entry.name],
              ports,
              envFrom: [{ configMapRef: { name: "bazaar-common" } }, { configMapRef: { name: entry.name } }, { secretRef: { name: `${entry.name}-secrets` } }],
              resources: processResources,
              // Migrations run at start, one replica at a time under an advisory lock: up to 3 minutes.
              startupProbe: { ...ready, periodSeconds: 5, timeoutSeconds: 2, failureThreshold: 36 },
              readinessProbe: { ...ready, periodSeconds: 5, timeoutSeconds: 2, failureThreshold: 2 },
              livenessProbe: { httpGet: { path: "/livez", port: "http" }, periodSeconds: 10, timeoutSeconds: 2, failureThreshold: 3 },
              lifecycle: { preStop: { sleep: { seconds: shutdown.preStopSeconds } } },
              securityContext: containerSecurity,
              volumeMounts: [tmpMount],
            },
          ],
          volumes: [tmpVolume],
        },
      },
    },
  };
}

function processService(entry: ServiceEntry): Manifest {
  const ports = [
    ...(entry.grpcPort !== undefined ? [{ name: "grpc", port: entry.grpcPort, targetPort: "grpc", appProtocol: "kubernetes.io/h2c" }] : []),
    { name: "http", port: entry.httpPort, targetPort: "http" },
    ...(entry.metricsPort !== undefined ? [{ name: "metrics", port: entry.metricsPort, targetPort: "metrics" }] : []),
  ];
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: { name: entry.name, labels: labelsOf(entry.name) },
    // Headless for gRPC: DNS answers every ready pod, and callers balance per call (round_robin).
    spec: { ...(entry.grpcPort !== undefined ? { clusterIP: "None" } : {}), selector: { "app.kubernetes.io/name": entry.name }, ports },
  };
}

/** The variables every process shares (compose.yaml's x-app-env, with Kubernetes names). */
function commonConfig(): Record<string, string> {
  const identity = catalog.find((s) => s.name === "identity")!;
  const env: Record<string, string> = {
    BIND_HOST: "0.0.0.0",
    LOG_LEVEL: "info",
    OTEL_EXPORTER_OTLP_ENDPOINT: `http://jaeger:${infrastructurePorts.otlp}`,
    REDIS_URL: `redis://redis:${infrastructurePorts.redis}`,
    JWKS_URL: `http://identity:${identity.httpPort}/.well-known/jwks.json`,
    OAUTH_TOKEN_URL: `http://identity:${identity.httpPort}/oauth2/token`,
    SEED_DEMO_DATA: "false",
    SHUTDOWN_DRAIN_MS: String(shutdown.drainMs),
  };
  for (const peer of catalog) if (peer.grpcPort !== undefined) env[`${peer.name.toUpperCase()}_ADDR`] = `${peer.name}:${peer.grpcPort}`;
  return env;
}

function processConfig(entry: ServiceEntry): Record<string, string> {
  return {
    ...(entry.grpcPort !== undefined ? { GRPC_PORT: String(entry.grpcPort) } : {}),
    HTTP_PORT: String(entry.httpPort),
    ...(entry.metricsPort !== undefined ? { METRICS_PORT: String(entry.metricsPort) } : {}),
    ...(entry.database ? { DATABASE_URL: `postgres://postgres@postgres:${infrastructurePorts.postgres}/${entry.database}` } : {}),
    // The gateway's address is a pod's, from the cluster's private ranges: believe its X-Forwarded-Proto.
    ...(entry.name === "bff" ? { TRUSTED_PROXIES: "10.0.0.0/8,172.16.0.0/12,192.168.0.0/16" } : {}),
  };
}

/** Development values, as deploy/compose/secrets.env has them; the production overlay replaces them (README, "Kubernetes"). */
function developmentSecrets(entry: ServiceEntry): string {
  const lines = ["# Development values: known to everyone. The production overlay deletes this Secret; create your own (README, Kubernetes)."];
  lines.push("DEPLOYMENT_MODE=development");
  if (entry.database) lines.push("PGPASSWORD=bazaar-dev-postgres");
  if (entry.messaging) lines.push(`AMQP_URL=amqp://bazaar:bazaar-dev-rabbitmq@rabbitmq:${infrastructurePorts.rabbitmq}`);
  if (entry.name === "identity") lines.push("ADMIN_PASSWORD=bazaar-admin");
  return `${lines.join("\n")}\n`;
}

function gatewayManifests(): Manifest[] {
  const probe = (path: string) => ({ httpGet: { path, port: "ops" }, periodSeconds: 5, timeoutSeconds: 2 });
  return [
    serviceAccount("gateway"),
    {
      apiVersion: "v1",
      kind: "Service",
      metadata: { name: "gateway", labels: labelsOf("gateway") },
      spec: {
        type: "LoadBalancer",
        selector: { "app.kubernetes.io/name": "gateway" },
        ports: [
          { name: "http", port: gatewayPorts.http, targetPort: "http" },
          { name: "https", port: gatewayPorts.https, targetPort: "https" },
        ],
      },
    },
    {
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: { name: "gateway", labels: labelsOf("gateway") },
      spec: {
        replicas: 1,
        ...rollout,
        selector: select("gateway"),
        template: {
          metadata: {
            labels: labelsOf("gateway"),
            annotations: { "prometheus.io/scrape": "true", "prometheus.io/port": String(gatewayPorts.ops), "prometheus.io/path": "/stats/prometheus" },
          },
          spec: {
            serviceAccountName: "gateway",
            automountServiceAccountToken: false,
            // The image's own user (envoy, 101); `envoy` is run directly, not the entrypoint that steps down from root.
            securityContext: podSecurity(101),
            terminationGracePeriodSeconds: shutdown.preStopSeconds + 10,
            topologySpreadConstraints: spread("gateway"),
            containers: [
              {
                name: "envoy",
                image: images.envoy,
                command: ["envoy"],
                args: ["-c", "/etc/gateway/envoy.yaml", "--log-format", "%Y-%m-%dT%T.%eZ %l [%n] %v"],
                ports: [
                  { name: "http", containerPort: gatewayPorts.http },
                  { name: "https", containerPort: gatewayPorts.https },
                  { name: "ops", containerPort: gatewayPorts.ops },
                ],
                resources: { requests: { cpu: "100m", memory: "64Mi" }, limits: { cpu: "1", memory: "128Mi" } },
                startupProbe: { ...probe("/ready"), failureThreshold: 24 },
                readinessProbe: { ...probe("/ready"), failureThreshold: 2 },
                livenessProbe: { ...probe("/ready"), periodSeconds: 10, failureThreshold: 3 },
                lifecycle: { preStop: { sleep: { seconds: shutdown.preStopSeconds } } },
                securityContext: containerSecurity,
                volumeMounts: [
                  // Apart from /etc/envoy: a volume cannot hold the mount point of another (certs), as the ConfigMap's is read-only.
                  { name: "config", mountPath: "/etc/gateway", readOnly: true },
                  { name: "certs", mountPath: "/etc/envoy/certs", readOnly: true },
                  tmpMount,
                ],
              },
            ],
            volumes: [
              { name: "config", configMap: { name: "gateway-config" } },
              // A TLS Secret of your own (README, Kubernetes): the names envoy.yaml reads.
              {
                name: "certs",
                secret: {
                  secretName: "gateway-tls",
                  items: [
                    { key: "tls.crt", path: "gateway.crt" },
                    { key: "tls.key", path: "gateway.key" },
                  ],
                },
              },
              tmpVolume,
            ],
          },
        },
      },
    },
    pdb("gateway"),
  ];
}

/** A rule's peers: the pods named, each rule for one port. */
function rulesByPort(peersByPort: Map<number, Set<string>>, direction: "from" | "to"): Manifest[] {
  return [...peersByPort.entries()]
    .sort(([a], [b]) => a - b)
    .map(([port, names]) => ({ [direction]: [{ podSelector: selectAny([...names]) }], ports: [{ protocol: "TCP", port }] }));
}

function add(map: Map<number, Set<string>>, port: number, name: string): void {
  if (!map.has(port)) map.set(port, new Set());
  map.get(port)!.add(name);
}

/** Who reaches each process on which port: the catalog's callers and the gateway. */
function callers(): Map<string, Map<number, Set<string>>> {
  const byCallee = new Map<string, Map<number, Set<string>>>();
  const edge = (from: string, to: string, port: number) => {
    if (!byCallee.has(to)) byCallee.set(to, new Map());
    add(byCallee.get(to)!, port, from);
  };
  for (const entry of catalog) for (const d of dependenciesOf(entry)) if ("peer" in d) edge(entry.name, d.peer, d.port);
  for (const d of gatewayDependencies()) if ("peer" in d) edge("gateway", d.peer, d.port);
  return byCallee;
}

/** Who uses each kind of infrastructure, on which port. */
function infrastructureUsers(): Map<Infrastructure, { port: number; users: Set<string> }> {
  const out = new Map<Infrastructure, { port: number; users: Set<string> }>();
  const use = (name: string, kind: Infrastructure, port: number) => {
    if (!out.has(kind)) out.set(kind, { port, users: new Set() });
    out.get(kind)!.users.add(name);
  };
  for (const entry of catalog) for (const d of dependenciesOf(entry)) if ("infrastructure" in d) use(entry.name, d.infrastructure, d.port);
  return out;
}

const networkPolicy = (name: string, podSelector: Manifest, spec: Manifest): Manifest => ({
  apiVersion: "networking.k8s.io/v1",
  kind: "NetworkPolicy",
  metadata: { name, labels: partOf },
  spec: { podSelector, ...spec },
});

/** Default deny, DNS, and exactly the call graph: each process's ingress from its callers and egress to its callees and infrastructure. */
function networkPolicies(): Manifest[] {
  const byCallee = callers();
  const policies: Manifest[] = [
    networkPolicy("default-deny", {}, { policyTypes: ["Ingress", "Egress"] }),
    networkPolicy(
      "allow-dns",
      {},
      {
        policyTypes: ["Egress"],
        egress: [
          {
            to: [
              { namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "kube-system" } }, podSelector: { matchLabels: { "k8s-app": "kube-dns" } } },
            ],
            ports: [
              { protocol: "UDP", port: 53 },
              { protocol: "TCP", port: 53 },
            ],
          },
        ],
      },
    ),
  ];
  const gatewayEgress = new Map<number, Set<string>>();
  const processEgress = new Map<string, Map<number, Set<string>>>();
  for (const [callee, ports] of byCallee)
    for (const [port, names] of ports)
      for (const caller of names) {
        if (caller === "gateway") add(gatewayEgress, port, callee);
        else {
          if (!processEgress.has(caller)) processEgress.set(caller, new Map());
          add(processEgress.get(caller)!, port, callee);
        }
      }
  for (const entry of catalog) {
    const ingress = byCallee.get(entry.name) ?? new Map();
    const egress = processEgress.get(entry.name) ?? new Map();
    policies.push(
      networkPolicy(entry.name, select(entry.name), {
        policyTypes: ["Ingress", "Egress"],
        ingress: rulesByPort(ingress, "from"),
        egress: rulesByPort(egress, "to"),
      }),
    );
  }
  const gatewayOtlp = gatewayDependencies().filter((d) => "infrastructure" in d);
  policies.push(
    networkPolicy("gateway", select("gateway"), {
      policyTypes: ["Ingress", "Egress"],
      // From anywhere: the gateway is the shop's one entrance.
      ingress: [{ ports: [gatewayPorts.http, gatewayPorts.https].map((port) => ({ protocol: "TCP", port })) }],
      // The OTLP rule first: the production overlay points it (egress/0) outside the cluster.
      egress: [
        ...gatewayOtlp.map((d) => ({
          to: [infrastructurePeer((d as { infrastructure: Infrastructure }).infrastructure)],
          ports: [{ protocol: "TCP", port: d.port }],
        })),
        ...rulesByPort(gatewayEgress, "to"),
      ],
    }),
  );
  for (const [kind, { port, users }] of infrastructureUsers()) {
    policies.push(
      networkPolicy(`${kind}-clients`, selectAny([...users]), {
        policyTypes: ["Egress"],
        egress: [{ to: [infrastructurePeer(kind)], ports: [{ protocol: "TCP", port }] }],
      }),
    );
  }
  return policies;
}

const infrastructurePeer = (kind: Infrastructure) => ({ podSelector: { matchLabels: { [infrastructureLabel]: kind } } });

/** The ingress side of an in-cluster infrastructure pod: its users (and the gateway's spans for the OTLP endpoint). */
function infrastructureIngress(kind: Infrastructure): Manifest {
  const rules = new Map<number, Set<string>>();
  const u = infrastructureUsers().get(kind)!;
  for (const name of u.users) add(rules, u.port, name);
  for (const d of gatewayDependencies()) if ("infrastructure" in d && d.infrastructure === kind) add(rules, d.port, "gateway");
  return networkPolicy(kind, { matchLabels: { [infrastructureLabel]: kind } }, { policyTypes: ["Ingress"], ingress: rulesByPort(rules, "from") });
}

interface Infra {
  name: string;
  kind: Infrastructure;
  image: string;
  uid: number;
  port: number;
  args?: string[];
  env?: Manifest[];
  dataPath: string;
  writable: string[];
  probe: string[];
  resources: Manifest;
}

const localInfrastructure: Infra[] = [
  {
    name: "postgres",
    kind: "postgres",
    image: images.postgres,
    uid: 999,
    port: infrastructurePorts.postgres,
    args: ["-c", "max_connections=200"],
    env: [
      { name: "PGDATA", value: "/var/lib/postgresql/data/pgdata" },
      { name: "POSTGRES_PASSWORD", valueFrom: { secretKeyRef: { name: "infrastructure-secrets", key: "POSTGRES_PASSWORD" } } },
    ],
    dataPath: "/var/lib/postgresql/data",
    writable: ["/var/run/postgresql", "/tmp"],
    probe: ["pg_isready", "-h", "127.0.0.1", "-U", "postgres"],
    resources: { requests: { cpu: "250m", memory: "256Mi" }, limits: { cpu: "1", memory: "512Mi" } },
  },
  {
    name: "redis",
    kind: "redis",
    image: images.redis,
    uid: 999,
    port: infrastructurePorts.redis,
    // compose.yaml's settings, and its reasons: AOF, no RDB, noeviction.
    args: [
      "redis-server",
      "--protected-mode",
      "no",
      "--save",
      "",
      "--appendonly",
      "yes",
      "--appendfsync",
      "everysec",
      "--maxmemory",
      "96mb",
      "--maxmemory-policy",
      "noeviction",
    ],
    dataPath: "/data",
    writable: [],
    probe: ["redis-cli", "ping"],
    resources: { requests: { cpu: "100m", memory: "64Mi" }, limits: { cpu: "1", memory: "128Mi" } },
  },
  {
    name: "rabbitmq",
    kind: "rabbitmq",
    image: images.rabbitmq,
    uid: 999,
    port: infrastructurePorts.rabbitmq,
    env: [
      // The node's name stays the same across restarts, so its data volume stays valid.
      { name: "RABBITMQ_NODENAME", value: "rabbit@localhost" },
      { name: "RABBITMQ_DEFAULT_USER", valueFrom: { secretKeyRef: { name: "infrastructure-secrets", key: "RABBITMQ_DEFAULT_USER" } } },
      { name: "RABBITMQ_DEFAULT_PASS", valueFrom: { secretKeyRef: { name: "infrastructure-secrets", key: "RABBITMQ_DEFAULT_PASS" } } },
    ],
    dataPath: "/var/lib/rabbitmq",
    writable: ["/tmp"],
    // Not `ping`, which answers once the Erlang node is up, before the listeners accept connections.
    probe: ["rabbitmq-diagnostics", "-q", "check_port_connectivity"],
    resources: { requests: { cpu: "250m", memory: "256Mi" }, limits: { cpu: "1", memory: "512Mi" } },
  },
];

function statefulSet(i: Infra): Manifest[] {
  const labels = { ...labelsOf(i.name), [infrastructureLabel]: i.kind };
  const exec = { exec: { command: i.probe }, periodSeconds: 5, timeoutSeconds: 5 };
  const extra = i.writable.map((path, n) => ({ name: `scratch-${n}`, path }));
  return [
    serviceAccount(i.name),
    {
      apiVersion: "v1",
      kind: "Service",
      metadata: { name: i.name, labels },
      spec: { clusterIP: "None", selector: { "app.kubernetes.io/name": i.name }, ports: [{ name: "main", port: i.port, targetPort: i.port }] },
    },
    {
      apiVersion: "apps/v1",
      kind: "StatefulSet",
      metadata: { name: i.name, labels },
      spec: {
        serviceName: i.name,
        replicas: 1,
        selector: select(i.name),
        template: {
          metadata: { labels },
          spec: {
            serviceAccountName: i.name,
            automountServiceAccountToken: false,
            securityContext: podSecurity(i.uid, i.uid),
            terminationGracePeriodSeconds: 30,
            containers: [
              {
                name: i.name,
                image: i.image,
                ...(i.args ? { args: i.args } : {}),
                ...(i.env ? { env: i.env } : {}),
                ports: [{ name: "main", containerPort: i.port }],
                resources: i.resources,
                startupProbe: { ...exec, failureThreshold: 24 },
                readinessProbe: { ...exec, failureThreshold: 2 },
                livenessProbe: { ...exec, periodSeconds: 10, failureThreshold: 6 },
                securityContext: containerSecurity,
                volumeMounts: [{ name: "data", mountPath: i.dataPath }, ...extra.map((e) => ({ name: e.name, mountPath: e.path }))],
              },
            ],
            volumes: extra.map((e) => ({ name: e.name, emptyDir: {} })),
          },
        },
        volumeClaimTemplates: [{ metadata: { name: "data" }, spec: { accessModes: ["ReadWriteOnce"], resources: { requests: { storage: "1Gi" } } } }],
      },
    },
    pdb(i.name),
  ];
}

function hpa(name: string): Manifest {
  return {
    apiVersion: "autoscaling/v2",
    kind: "HorizontalPodAutoscaler",
    metadata: { name, labels: labelsOf(name) },
    spec: {
      scaleTargetRef: { apiVersion: "apps/v1", kind: "Deployment", name },
      minReplicas: 3,
      maxReplicas: 10,
      metrics: [{ type: "Resource", resource: { name: "cpu", target: { type: "Utilization", averageUtilization: 70 } } }],
    },
  };
}

/** A small optional workload (Jaeger, Prometheus, Grafana): one pod, restricted, probed. */
function tool(
  name: string,
  o: {
    image: string;
    uid: number;
    args?: string[];
    env?: Manifest[];
    ports: Manifest[];
    probe: Manifest;
    mounts: Manifest[];
    volumes: Manifest[];
    automount?: boolean;
    annotations?: Record<string, string>;
  },
): Manifest[] {
  const labels = labelsOf(name);
  return [
    serviceAccount(name, o.automount ?? false),
    {
      apiVersion: "v1",
      kind: "Service",
      metadata: { name, labels },
      spec: { selector: { "app.kubernetes.io/name": name }, ports: o.ports.map((p) => ({ name: p.name, port: p.containerPort, targetPort: p.name })) },
    },
    {
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: { name, labels },
      spec: {
        replicas: 1,
        selector: select(name),
        template: {
          metadata: {
            labels: { ...labels, ...(name === "jaeger" ? { [infrastructureLabel]: "otlp" } : {}) },
            ...(o.annotations ? { annotations: o.annotations } : {}),
          },
          spec: {
            serviceAccountName: name,
            automountServiceAccountToken: o.automount ?? false,
            securityContext: podSecurity(o.uid, o.uid),
            terminationGracePeriodSeconds: 30,
            containers: [
              {
                name,
                image: o.image,
                ...(o.args ? { args: o.args } : {}),
                ...(o.env ? { env: o.env } : {}),
                ports: o.ports,
                resources: { requests: { cpu: "100m", memory: "128Mi" }, limits: { cpu: "1", memory: "512Mi" } },
                startupProbe: { ...o.probe, periodSeconds: 5, failureThreshold: 24 },
                readinessProbe: { ...o.probe, periodSeconds: 5, failureThreshold: 2 },
                livenessProbe: { ...o.probe, periodSeconds: 10, failureThreshold: 3 },
                securityContext: containerSecurity,
                volumeMounts: [...o.mounts, tmpMount],
              },
            ],
            volumes: [...o.volumes, tmpVolume],
          },
        },
      },
    },
  ];
}

/** Prometheus's pod discovery: the pods of its namespace that carry prometheus.io/scrape, at prometheus.io/port and /path. */
function prometheusConfig(): string {
  return stringify({
    global: { scrape_interval: "15s", evaluation_interval: "15s" },
    scrape_configs: [
      {
        job_name: "bazaar-pods",
        kubernetes_sd_configs: [{ role: "pod", namespaces: { own_namespace: true } }],
        relabel_configs: [
          { source_labels: ["__meta_kubernetes_pod_annotation_prometheus_io_scrape"], regex: "true", action: "keep" },
          { source_labels: ["__meta_kubernetes_pod_phase"], regex: "Running", action: "keep" },
          { source_labels: ["__meta_kubernetes_pod_annotation_prometheus_io_path"], regex: "(.+)", target_label: "__metrics_path__" },
          {
            source_labels: ["__meta_kubernetes_pod_ip", "__meta_kubernetes_pod_annotation_prometheus_io_port"],
            regex: "(.+);(\\d+)",
            replacement: "$1:$2",
            target_label: "__address__",
          },
          { source_labels: ["__meta_kubernetes_pod_label_app_kubernetes_io_name"], target_label: "service" },
          { source_labels: ["__meta_kubernetes_pod_name"], target_label: "instance" },
        ],
      },
    ],
  });
}

/** Prometheus's edges: each process's and the gateway's metrics port, the API server (pod discovery); Grafana's: Prometheus. */
function monitoringPolicies(): Manifest[] {
  const scrapes = catalog.map((e) => ({ name: e.name, port: metricsPortOf(e) })).concat([{ name: "gateway", port: gatewayPorts.ops }]);
  const egress = new Map<number, Set<string>>();
  for (const s of scrapes) add(egress, s.port, s.name);
  return [
    networkPolicy("prometheus", select("prometheus"), {
      policyTypes: ["Ingress", "Egress"],
      ingress: [{ from: [{ podSelector: select("grafana") }], ports: [{ protocol: "TCP", port: 9090 }] }],
      egress: [
        ...rulesByPort(egress, "to"),
        // The API server, for pod discovery: its address depends on the cluster.
        { to: [{ ipBlock: { cidr: "0.0.0.0/0" } }], ports: [443, 6443].map((port) => ({ protocol: "TCP", port })) },
      ],
    }),
    ...scrapes.map((s) =>
      networkPolicy(`${s.name}-scrapes`, select(s.name), {
        policyTypes: ["Ingress"],
        ingress: [{ from: [{ podSelector: select("prometheus") }], ports: [{ protocol: "TCP", port: s.port }] }],
      }),
    ),
  ];
}

const documents = (manifests: Manifest[]) => manifests.map((m) => stringify(m)).join("---\n");
const header = "# Generated by `bun run generate:k8s` (deploy/k8s/generate.ts) from the service catalog: do not edit.\n";
const kustomization = (k: Manifest) => header + stringify({ apiVersion: "kustomize.config.k8s.io/v1beta1", kind: "Kustomization", ...k });
const component = (k: Manifest) => header + stringify({ apiVersion: "kustomize.config.k8s.io/v1alpha1", kind: "Component", ...k });
const literals = (env: Record<string, string>) => Object.entries(env).map(([k, v]) => `${k}=${v}`);

/** Every file under deploy/k8s this script writes, by path relative to deploy/k8s. */
export async function k8sFiles(): Promise<Record<string, string>> {
  const files: Record<string, string> = {};
  const names = catalog.map((e) => e.name);
  for (const entry of catalog) {
    files[`base/${entry.name}.yaml`] = header + documents([serviceAccount(entry.name), processService(entry), processDeployment(entry), pdb(entry.name)]);
    files[`base/secrets/${entry.name}.env`] = developmentSecrets(entry);
  }
  files["base/gateway.yaml"] = header + documents(gatewayManifests());
  files["base/gateway/envoy.yaml"] = await Bun.file(`${here}../../gateway/envoy.yaml`).text();
  files["base/network-policies.yaml"] = header + documents(networkPolicies());
  files["base/kustomization.yaml"] = kustomization({
    resources: [...names.map((n) => `${n}.yaml`), "gateway.yaml", "network-policies.yaml"],
    configMapGenerator: [
      { name: "bazaar-common", literals: literals(commonConfig()) },
      ...catalog.map((e) => ({ name: e.name, literals: literals(processConfig(e)) })),
      { name: "gateway-config", files: ["envoy.yaml=gateway/envoy.yaml"] },
    ],
    // No hash suffix: the production overlay replaces these with Secrets made outside the repository.
    secretGenerator: catalog.map((e) => ({ name: `${e.name}-secrets`, envs: [`secrets/${e.name}.env`], options: { disableNameSuffixHash: true } })),
  });

  files["components/autoscaling/hpa.yaml"] = header + documents([...names, "gateway"].map(hpa));
  files["components/autoscaling/kustomization.yaml"] = component({ resources: ["hpa.yaml"] });

  files["components/jaeger/jaeger.yaml"] =
    header +
    documents([
      ...tool("jaeger", {
        image: images.jaeger,
        uid: 10001,
        env: [{ name: "JAEGER_LISTEN_HOST", value: "0.0.0.0" }],
        ports: [
          { name: "otlp-grpc", containerPort: 4317 },
          { name: "otlp-http", containerPort: infrastructurePorts.otlp },
          { name: "ui", containerPort: 16686 },
          { name: "health", containerPort: 13133 },
        ],
        probe: { httpGet: { path: "/status", port: "health" } },
        mounts: [],
        volumes: [],
      }),
      infrastructureIngress("otlp"),
    ]);
  files["components/jaeger/kustomization.yaml"] = component({ resources: ["jaeger.yaml"] });

  files["components/prometheus/prometheus.yml"] = prometheusConfig();
  files["components/prometheus/prometheus.yaml"] =
    header +
    documents([
      ...tool("prometheus", {
        image: images.prometheus,
        uid: 65534,
        // Pod discovery reads the API server: the one Bazaar workload with a token, for a Role that lists pods.
        automount: true,
        args: ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus", "--storage.tsdb.retention.time=2d"],
        ports: [{ name: "web", containerPort: 9090 }],
        probe: { httpGet: { path: "/-/ready", port: "web" } },
        mounts: [
          { name: "config", mountPath: "/etc/prometheus", readOnly: true },
          { name: "data", mountPath: "/prometheus" },
        ],
        volumes: [
          { name: "config", configMap: { name: "prometheus-config" } },
          { name: "data", emptyDir: { sizeLimit: "1Gi" } },
        ],
      }),
      {
        apiVersion: "rbac.authorization.k8s.io/v1",
        kind: "Role",
        metadata: { name: "prometheus-discovery", labels: labelsOf("prometheus") },
        rules: [{ apiGroups: [""], resources: ["pods"], verbs: ["get", "list", "watch"] }],
      },
      {
        apiVersion: "rbac.authorization.k8s.io/v1",
        kind: "RoleBinding",
        metadata: { name: "prometheus-discovery", labels: labelsOf("prometheus") },
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "prometheus-discovery" },
        subjects: [{ kind: "ServiceAccount", name: "prometheus" }],
      },
      ...monitoringPolicies(),
    ]);
  files["components/prometheus/kustomization.yaml"] = component({
    resources: ["prometheus.yaml"],
    configMapGenerator: [{ name: "prometheus-config", files: ["prometheus.yml"] }],
  });

  files["components/grafana/datasources.yaml"] = stringify({
    apiVersion: 1,
    datasources: [{ name: "Prometheus", type: "prometheus", access: "proxy", url: "http://prometheus:9090", isDefault: true }],
  });
  files["components/grafana/grafana.yaml"] =
    header +
    documents([
      ...tool("grafana", {
        image: images.grafana,
        uid: 472,
        env: [{ name: "GF_SECURITY_ADMIN_PASSWORD", valueFrom: { secretKeyRef: { name: "grafana-secrets", key: "GF_SECURITY_ADMIN_PASSWORD" } } }],
        ports: [{ name: "web", containerPort: 3000 }],
        probe: { httpGet: { path: "/api/health", port: "web" } },
        mounts: [
          { name: "datasources", mountPath: "/etc/grafana/provisioning/datasources", readOnly: true },
          { name: "data", mountPath: "/var/lib/grafana" },
        ],
        volumes: [
          { name: "datasources", configMap: { name: "grafana-datasources" } },
          { name: "data", emptyDir: {} },
        ],
      }),
      networkPolicy("grafana", select("grafana"), {
        policyTypes: ["Ingress", "Egress"],
        ingress: [],
        egress: [{ to: [{ podSelector: select("prometheus") }], ports: [{ protocol: "TCP", port: 9090 }] }],
      }),
    ]);
  files["components/grafana/kustomization.yaml"] = component({
    resources: ["grafana.yaml"],
    configMapGenerator: [{ name: "grafana-datasources", files: ["datasources.yaml"] }],
    secretGenerator: [{ name: "grafana-secrets", literals: ["GF_SECURITY_ADMIN_PASSWORD=bazaar-dev-grafana"] }],
  });

  files["overlays/local/infrastructure.yaml"] =
    header + documents([...localInfrastructure.flatMap(statefulSet), ...localInfrastructure.map((i) => infrastructureIngress(i.kind))]);
  files["overlays/local/kustomization.yaml"] = kustomization({
    namespace: "bazaar",
    resources: ["../../base", "infrastructure.yaml"],
    components: ["../../components/jaeger", "../../components/prometheus", "../../components/grafana"],
    configMapGenerator: [{ name: "bazaar-common", behavior: "merge", literals: ["SEED_DEMO_DATA=true"] }],
    secretGenerator: [
      {
        name: "infrastructure-secrets",
        literals: ["POSTGRES_PASSWORD=bazaar-dev-postgres", "RABBITMQ_DEFAULT_USER=bazaar", "RABBITMQ_DEFAULT_PASS=bazaar-dev-rabbitmq"],
      },
    ],
    images: [{ name: images.bazaar, newTag: "dev" }],
  });

  // Production: infrastructure outside the cluster, reached by name through ExternalName
  // Services (the same names the ConfigMaps use) and by address in the NetworkPolicies.
  const external = (["postgres", "redis", "rabbitmq", "otlp"] as const).map((kind) => ({ kind, service: kind === "otlp" ? "jaeger" : kind }));
  files["overlays/production/external-infrastructure.yaml"] =
    header +
    documents(
      external.map(({ kind, service }) => ({
        apiVersion: "v1",
        kind: "Service",
        metadata: { name: service, labels: partOf },
        spec: { type: "ExternalName", externalName: `${kind}.bazaar.example.internal` },
      })),
    );
  files["overlays/production/kustomization.yaml"] = kustomization({
    namespace: "bazaar",
    resources: ["../../base", "external-infrastructure.yaml"],
    components: ["../../components/autoscaling"],
    replicas: [...names, "gateway"].map((name) => ({ name, count: 3 })),
    images: [{ name: images.bazaar, newName: "registry.example.com/bazaar", newTag: "1.0.0" }],
    patches: [
      ...external.map(({ kind }) => ({
        target: { kind: "NetworkPolicy", name: `${kind}-clients` },
        patch: stringify([{ op: "replace", path: "/spec/egress/0/to", value: [{ ipBlock: { cidr: "10.0.0.0/8" } }] }]),
      })),
      {
        target: { kind: "NetworkPolicy", name: "gateway" },
        patch: stringify([{ op: "replace", path: "/spec/egress/0/to", value: [{ ipBlock: { cidr: "10.0.0.0/8" } }] }]),
      },
      ...names.map((name) => ({
        target: { kind: "Secret", name: `${name}-secrets` },
        patch: stringify({ $patch: "delete", apiVersion: "v1", kind: "Secret", metadata: { name: `${name}-secrets` } }),
      })),
    ],
  });
  return files;
}

if (import.meta.main) {
  const files = await k8sFiles();
  for (const [path, text] of Object.entries(files)) await Bun.write(`${here}${path}`, text);
  process.stdout.write(`wrote ${Object.keys(files).length} files under deploy/k8s\n`);
}
