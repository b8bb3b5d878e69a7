/**
 * Builds the Envoy gateway's configuration (`gateway/envoy.yaml`) from the two sources of
 * truth it must agree with: the service catalog (names, ports, gRPC services) and each
 * service's own access declarations (`<name>Access` in `services/<name>/src/rpc.ts`, which
 * say which RPCs are public). A new service or RPC therefore reaches the edge — routed, and
 * behind a JWT unless its service declares it public — by running `bun run generate:gateway`;
 * a test fails while the committed file is stale.
 *
 * Addresses are the compose / Kubernetes names: each process is reachable by its catalog name
 * on its catalog ports.
 */
import type { DescMethod, DescService } from "@bufbuild/protobuf";
import { authEnv } from "@bazaar/platform/env";
import type { Access } from "@bazaar/platform/auth";
import { serviceCatalog, type ServiceEntry } from "@bazaar/platform/service-catalog";

const repositoryRoot = new URL("..", import.meta.url).pathname;

/** Ports of the gateway itself (DESIGN.md's table). */
export const gatewayPorts = { http: 8080, https: 8443, ops: 9902, admin: 9901 } as const;

/** Where the gateway sends its spans: Jaeger's OTLP/gRPC port. */
const otlpCollector = { host: "jaeger", port: 4317 };

/** One gRPC method as the edge sees it. */
export interface EdgeMethod {
  /** The HTTP/2 path, `/bazaar.catalog.v1.CatalogService/ListProducts`. */
  path: string;
  /** Who the service lets call it. */
  access: Access;
  /** A read that may be retried: Get*, List*, BatchGet*. */
  idempotentRead: boolean;
  /** Marked deprecated in its proto: retired, so never let through without a token, whatever its access. */
  deprecated: boolean;
}

/** One gRPC service of the catalog with its methods. */
export interface EdgeService {
  /** Catalog name, also the cluster name and the upstream host. */
  name: string;
  grpcPort: number;
  httpPort: number;
  /** `bazaar.catalog.v1.CatalogService`. */
  typeName: string;
  methods: EdgeMethod[];
}

const readPattern = /^(Get|List|BatchGet)[A-Z]/;

/**
 * Reads every gRPC service of the catalog with its descriptor (from the generated contracts)
 * and its access declaration (from the service's rpc.ts). Fails naming what is missing.
 */
export async function loadEdgeServices(): Promise<EdgeService[]> {
  const out: EdgeService[] = [];
  for (const entry of serviceCatalog as readonly ServiceEntry[]) {
    if (entry.grpcPort === undefined) continue;
    const typeNames = entry.grpcServices ?? [];
    if (typeNames.length !== 1) throw new Error(`${entry.name}: the catalog must name exactly one gRPC service (grpcServices), got ${typeNames.length}`);
    const typeName = typeNames[0] as string;
    const protoPackage = typeName.split(".").slice(0, -1).join("/");
    const contracts = (await import(`${repositoryRoot}proto/gen/${protoPackage}/${entry.name}_pb.ts`)) as Record<string, unknown>;
    const service = Object.values(contracts).find((v): v is DescService => isDescService(v) && v.typeName === typeName);
    if (!service) throw new Error(`${entry.name}: proto/gen/${protoPackage}/${entry.name}_pb.ts has no service ${typeName}`);
    const rpc = (await import(`${repositoryRoot}services/${entry.name}/src/rpc.ts`)) as Record<string, unknown>;
    const access = rpc[`${entry.name}Access`] as Record<string, Access> | undefined;
    if (!access) throw new Error(`${entry.name}: services/${entry.name}/src/rpc.ts exports no ${entry.name}Access`);
    out.push({
      name: entry.name,
      grpcPort: entry.grpcPort,
      httpPort: entry.httpPort,
      typeName,
      methods: service.methods.map((m: DescMethod) => {
        const level = access[m.localName];
        if (!level) throw new Error(`${entry.name}: ${entry.name}Access declares no access for ${m.name}`);
        return { path: `/${typeName}/${m.name}`, access: level, idempotentRead: readPattern.test(m.name), deprecated: m.deprecated };
      }),
    });
  }
  return out;
}

function isDescService(v: unknown): v is DescService {
  return typeof v === "object" && v !== null && (v as { kind?: unknown }).kind === "service";
}

// ---------------------------------------------------------------------------------------------
// Pieces of the config.

const type = (name: string) => `type.googleapis.com/${name}`;
const address = (host: string, port: number) => ({ socket_address: { address: host, port_value: port } });
const jwtProvider = "bazaar";
/** Local rate-limit filter with per-route buckets only (sign-in, sign-up, checkout). */
const sensitiveLimiter = "bazaar.local_ratelimit.sensitive";

/** A token bucket: up to `burst` requests at once, refilled by `burst` every `seconds`. */
function bucket(burst: number, seconds: number) {
  return { max_tokens: burst, tokens_per_fill: burst, fill_interval: `${seconds}s` };
}

function enforced() {
  return {
    filter_enabled: { runtime_key: "local_rate_limit_enabled", default_value: { numerator: 100, denominator: "HUNDRED" } },
    filter_enforced: { runtime_key: "local_rate_limit_enforced", default_value: { numerator: 100, denominator: "HUNDRED" } },
  };
}

/**
 * A tighter bucket for one route, applied by the second rate-limit filter. Buckets are per
 * gateway instance, not per client: a second layer in front of identity's own per-account and
 * per-client throttling, sized so that a crowd of shoppers never meets them.
 */
function sensitiveLimit(statPrefix: string, burst: number, seconds: number) {
  return {
    [sensitiveLimiter]: {
      "@type": type("envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit"),
      stat_prefix: statPrefix,
      token_bucket: bucket(burst, seconds),
      ...enforced(),
      rate_limited_as_resource_exhausted: true,
      response_headers_to_add: [{ append_action: "OVERWRITE_IF_EXISTS_OR_ADD", header: { key: "x-ratelimit-bucket", value: statPrefix } }],
    },
  };
}

/** Retries for idempotent reads only: never for a call that changes something. */
function readRetries(perTry: string) {
  return {
    retry_on: "connect-failure,refused-stream,reset,unavailable",
    num_retries: 2,
    per_try_timeout: perTry,
    retry_back_off: { base_interval: "0.025s", max_interval: "0.25s" },
    retry_host_predicate: [
      {
        name: "envoy.retry_host_predicates.previous_hosts",
        typed_config: { "@type": type("envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate") },
      },
    ],
    host_selection_retry_max_attempts: 3,
  };
}

/** Route timeouts: PlaceOrder waits up to a few seconds for the saga to finish. */
function grpcTimeout(service: string): string {
  return service === "orders" ? "15s" : "5s";
}

function grpcRoutes(services: EdgeService[]) {
  const routes: unknown[] = [];
  for (const s of services) {
    for (const m of s.methods) {
      const name = m.path.slice(1).replace("/", ".");
      const limited = m.path.endsWith("/Login") || m.path.endsWith("/Register");
      if (!m.idempotentRead && !limited) continue;
      routes.push({
        name,
        match: { path: m.path, grpc: {} },
        route: { cluster: s.name, timeout: grpcTimeout(s.name), ...(m.idempotentRead ? { retry_policy: readRetries("2s") } : {}) },
        ...(limited ? { typed_per_filter_config: sensitiveLimit(`grpc_${m.path.slice(m.path.lastIndexOf("/") + 1).toLowerCase()}`, 50, 10) } : {}),
      });
    }
    routes.push({ name: s.typeName, match: { prefix: `/${s.typeName}/`, grpc: {} }, route: { cluster: s.name, timeout: grpcTimeout(s.name) } });
  }
  // Health and reflection are served by every service: the `bazaar-service` header picks one
  // (grpcurl -H 'bazaar-service: orders' …); without it they go to the catalog.
  const shared = ["/grpc.health.v1.Health/", "/grpc.reflection.v1.ServerReflection/", "/grpc.reflection.v1alpha.ServerReflection/"];
  for (const prefix of shared) {
    const kind = prefix.includes("Health") ? "health" : "reflection";
    const streaming = {
      typed_per_filter_config: { "envoy.filters.http.buffer": { "@type": type("envoy.extensions.filters.http.buffer.v3.BufferPerRoute"), disabled: true } },
    };
    for (const s of services) {
      routes.push({
        name: `${kind}.${s.name}${prefix.includes("v1alpha") ? ".v1alpha" : ""}`,
        match: { prefix, grpc: {}, headers: [{ name: "bazaar-service", string_match: { exact: s.name } }] },
        // Reflection is a stream that lives as long as grpcurl's session: no route timeout.
        route: { cluster: s.name, timeout: kind === "health" ? "5s" : "0s", idle_timeout: "60s" },
        ...streaming,
      });
    }
    routes.push({
      name: `${kind}.default${prefix.includes("v1alpha") ? ".v1alpha" : ""}`,
      match: { prefix, grpc: {} },
      route: { cluster: "catalog", timeout: kind === "health" ? "5s" : "0s", idle_timeout: "60s" },
      ...streaming,
    });
  }
  // Any other gRPC path names no service here: UNIMPLEMENTED, not the BFF's web page.
  routes.push({
    name: "grpc.unknown",
    match: { prefix: "/", grpc: {} },
    direct_response: { status: 404, body: { inline_string: "no such gRPC service behind this gateway" } },
  });
  return routes;
}

function bffRoutes() {
  const bff = "bff";
  return [
    {
      // Server-sent events stream for as long as the page is open: no route timeout, an idle
      // timeout instead (the BFF pings every 15 s).
      name: "bff.events",
      match: { prefix: "/api/events" },
      route: { cluster: bff, timeout: "0s", idle_timeout: "60s" },
    },
    {
      name: "bff.signin",
      match: { path: "/api/auth/signin" },
      route: { cluster: bff, timeout: "10s" },
      typed_per_filter_config: sensitiveLimit("http_signin", 50, 10),
    },
    {
      name: "bff.signup",
      match: { path: "/api/auth/signup" },
      route: { cluster: bff, timeout: "10s" },
      typed_per_filter_config: sensitiveLimit("http_signup", 50, 10),
    },
    {
      name: "bff.checkout",
      match: { prefix: "/api/checkout" },
      route: { cluster: bff, timeout: "15s" },
      typed_per_filter_config: sensitiveLimit("http_checkout", 200, 1),
    },
    {
      name: "bff.api.read",
      match: { prefix: "/api/", headers: [{ name: ":method", string_match: { exact: "GET" } }] },
      route: { cluster: bff, timeout: "10s", retry_policy: readRetries("3s") },
    },
    { name: "bff.api", match: { prefix: "/api/" }, route: { cluster: bff, timeout: "10s" } },
    // The BFF serves its metrics on a port of its own, which the gateway has no cluster for;
    // /metrics is refused here too, so the web UI's catch-all does not answer it either.
    { name: "bff.metrics", match: { path: "/metrics" }, direct_response: { status: 404, body: { inline_string: "not found" } } },
    { name: "bff.web", match: { prefix: "/" }, route: { cluster: bff, timeout: "10s", retry_policy: readRetries("3s") } },
  ];
}

/** jwt_authn: identity's keys, checked claims, and one rule per public RPC before the rest. */
function jwtAuthn(services: EdgeService[]) {
  const issuer = authEnv.JWT_ISSUER.parse(undefined);
  const audience = authEnv.JWT_AUDIENCE.parse(undefined);
  const identity = services.find((s) => s.name === "identity");
  if (!identity) throw new Error("the catalog has no identity service: the gateway has no JWKS to verify tokens with");
  const rules: unknown[] = [];
  // Public RPCs pass without a token (a rule without `requires` verifies nothing); deprecated
  // ones do not, as nothing outside should still call them.
  for (const s of services) for (const m of s.methods) if (m.access === "public" && !m.deprecated) rules.push({ match: { path: m.path } });
  rules.push({ match: { prefix: "/grpc.health.v1.Health/" } });
  // Reflection describes every service to whoever asks: it is for inside the trust boundary,
  // so from the internet it takes a valid access token like any non-public RPC.
  rules.push({ match: { prefix: "/grpc.reflection." }, requires: { provider_name: jwtProvider } });
  // Every other RPC of every service needs a valid token.
  for (const s of services) rules.push({ match: { prefix: `/${s.typeName}/` }, requires: { provider_name: jwtProvider } });
  // Catch-alls: a request that matches no rule is not verified at all, so the list ends with
  // one. Any other gRPC call needs a token; the BFF's cookie traffic is the BFF's to check,
  // but a bearer token sent to it must still be valid.
  rules.push({ match: { prefix: "/", grpc: {} }, requires: { provider_name: jwtProvider } });
  rules.push({ match: { prefix: "/" }, requires: { requires_any: { requirements: [{ provider_name: jwtProvider }, { allow_missing: {} }] } } });
  return {
    name: "envoy.filters.http.jwt_authn",
    typed_config: {
      "@type": type("envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication"),
      providers: {
        [jwtProvider]: {
          issuer,
          audiences: [audience],
          remote_jwks: {
            http_uri: { uri: `http://identity:${identity.httpPort}/.well-known/jwks.json`, cluster: "identity_jwks", timeout: "2s" },
            // As long as every verifier may keep the key set: identity publishes a key at least
            // this long before it signs with it (signing-keys.ts), so a refetch always comes first.
            cache_duration: `${authEnv.JWKS_CACHE_SECONDS.parse(undefined)}s`,
            // Fetched when the gateway starts and refreshed in the background, not on a request.
            async_fetch: { fast_listener: false, failed_refetch_duration: "5s" },
            retry_policy: { num_retries: 5, retry_back_off: { base_interval: "0.5s", max_interval: "5s" } },
          },
          from_headers: [{ name: "authorization", value_prefix: "Bearer " }],
          // Services verify the token again themselves: pass it on.
          forward: true,
          clock_skew_seconds: 5,
        },
      },
      rules,
    },
  };
}

/** JSON access log line: trace id, route, upstream, response flags and duration. */
const accessLog = {
  name: "envoy.access_loggers.stdout",
  typed_config: {
    "@type": type("envoy.extensions.access_loggers.stream.v3.StdoutAccessLog"),
    log_format: {
      json_format: {
        time: "%START_TIME%",
        level: "info",
        msg: "request",
        service: "gateway",
        trace_id: "%TRACE_ID%",
        request_id: "%REQ(X-REQUEST-ID)%",
        method: "%REQ(:METHOD)%",
        path: "%REQ(:PATH)%",
        protocol: "%PROTOCOL%",
        status: "%RESPONSE_CODE%",
        grpc_status: "%GRPC_STATUS%",
        response_flags: "%RESPONSE_FLAGS%",
        route: "%ROUTE_NAME%",
        upstream_cluster: "%UPSTREAM_CLUSTER%",
        upstream_host: "%UPSTREAM_HOST%",
        duration_ms: "%DURATION%",
        upstream_ms: "%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%",
        bytes_received: "%BYTES_RECEIVED%",
        bytes_sent: "%BYTES_SENT%",
        client: "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%",
        user_agent: "%REQ(USER-AGENT)%",
      },
    },
  },
};

/** Identity headers a client might send to pose as someone: never passed upstream. */
const identityHeaders = ["x-jwt-payload", "x-user-id", "x-user-roles", "x-user-email", "x-forwarded-user", "x-authenticated-user", "x-principal"];

/** What the plain and the TLS listener share (one object each, written once in the YAML as an anchor). */
interface SharedHttp {
  accessLog: typeof accessLog;
  httpFilters: unknown[];
  routes: unknown[];
}

function connectionManager(shared: SharedHttp, tls: boolean) {
  return {
    name: "envoy.filters.network.http_connection_manager",
    typed_config: {
      "@type": type("envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"),
      stat_prefix: tls ? "ingress_https" : "ingress_http",
      // HTTP/1.1 for browsers, HTTP/2 (h2c on 8080, ALPN on 8443) for gRPC.
      codec_type: "AUTO",
      use_remote_address: true,
      generate_request_id: true,
      // JWT rules and routes match on the path: compare the path the upstream will see.
      normalize_path: true,
      merge_slashes: true,
      path_with_escaped_slashes_action: "REJECT_REQUEST",
      max_request_headers_kb: 60,
      request_headers_timeout: "10s",
      stream_idle_timeout: "300s",
      common_http_protocol_options: { idle_timeout: "300s", max_headers_count: 100, headers_with_underscores_action: "REJECT_REQUEST" },
      http2_protocol_options: { max_concurrent_streams: 100, initial_stream_window_size: 65536, initial_connection_window_size: 1048576 },
      access_log: [shared.accessLog],
      tracing: {
        random_sampling: { value: 100 },
        provider: {
          name: "envoy.tracers.opentelemetry",
          typed_config: {
            "@type": type("envoy.config.trace.v3.OpenTelemetryConfig"),
            grpc_service: { envoy_grpc: { cluster_name: "jaeger" }, timeout: "1s" },
            service_name: "gateway",
          },
        },
      },
      // The body of a rate-limited answer says what happened (gRPC callers get it as
      // grpc-message with RESOURCE_EXHAUSTED).
      local_reply_config: {
        mappers: [
          {
            filter: { status_code_filter: { comparison: { op: "EQ", value: { default_value: 429, runtime_key: "local_reply_429" } } } },
            body: { inline_string: "rate limit exceeded: too many requests from this client; wait a moment and try again" },
          },
          {
            filter: { status_code_filter: { comparison: { op: "EQ", value: { default_value: 413, runtime_key: "local_reply_413" } } } },
            body: { inline_string: "request too large: the gateway accepts at most 1 MiB" },
          },
        ],
      },
      http_filters: shared.httpFilters,
      route_config: {
        name: tls ? "bazaar_https" : "bazaar_http",
        request_headers_to_remove: identityHeaders,
        ...(tls
          ? {
              response_headers_to_add: [
                { append_action: "OVERWRITE_IF_EXISTS_OR_ADD", header: { key: "strict-transport-security", value: "max-age=31536000; includeSubDomains" } },
              ],
            }
          : {}),
        virtual_hosts: [{ name: "bazaar", domains: ["*"], routes: shared.routes }],
      },
    },
  };
}

function httpFilters(services: EdgeService[]) {
  return [
    {
      // The whole gateway's bucket.
      name: "envoy.filters.http.local_ratelimit",
      typed_config: {
        "@type": type("envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit"),
        stat_prefix: "gateway",
        token_bucket: bucket(5000, 1),
        ...enforced(),
        rate_limited_as_resource_exhausted: true,
      },
    },
    {
      // Per-route buckets (sign-in, sign-up, checkout): routes configure it; elsewhere it
      // has no bucket and lets everything through.
      name: sensitiveLimiter,
      typed_config: { "@type": type("envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit"), stat_prefix: "sensitive" },
    },
    jwtAuthn(services),
    {
      // Request bodies over 1 MiB are refused with 413 (streams opt out per route).
      name: "envoy.filters.http.buffer",
      typed_config: { "@type": type("envoy.extensions.filters.http.buffer.v3.Buffer"), max_request_bytes: 1048576 },
    },
    { name: "envoy.filters.http.router", typed_config: { "@type": type("envoy.extensions.filters.http.router.v3.Router") } },
  ];
}

function connectionLimit(statPrefix: string) {
  return {
    name: "envoy.filters.network.connection_limit",
    typed_config: { "@type": type("envoy.extensions.filters.network.connection_limit.v3.ConnectionLimit"), stat_prefix: statPrefix, max_connections: 5000 },
  };
}

function listeners(services: EdgeService[]) {
  const shared: SharedHttp = { accessLog, httpFilters: httpFilters(services), routes: [...grpcRoutes(services), ...bffRoutes()] };
  return [httpListener(shared), httpsListener(shared), opsListener()];
}

/** Plain HTTP/1.1 and h2c on the gateway's HTTP port. */
function httpListener(shared: SharedHttp) {
  return {
    name: "http",
    address: address("0.0.0.0", gatewayPorts.http),
    per_connection_buffer_limit_bytes: 32768,
    filter_chains: [{ filters: [connectionLimit("http"), connectionManager(shared, false)] }],
  };
}

/** TLS (h2 and HTTP/1.1 by ALPN) on the HTTPS port, with the same routes and filters as HTTP. */
function httpsListener(shared: SharedHttp) {
  return {
    name: "https",
    address: address("0.0.0.0", gatewayPorts.https),
    per_connection_buffer_limit_bytes: 32768,
    filter_chains: [
      {
        transport_socket: {
          name: "envoy.transport_sockets.tls",
          typed_config: {
            "@type": type("envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext"),
            common_tls_context: {
              // The development certificate made by gateway/make-dev-cert.sh.
              tls_certificates: [
                { certificate_chain: { filename: "/etc/envoy/certs/gateway.crt" }, private_key: { filename: "/etc/envoy/certs/gateway.key" } },
              ],
              alpn_protocols: ["h2", "http/1.1"],
              tls_params: { tls_minimum_protocol_version: "TLSv1_2" },
            },
          },
        },
        filters: [connectionLimit("https"), connectionManager(shared, true)],
      },
    ],
  };
}

/**
 * For Prometheus and probes only: /stats/prometheus and /ready from the admin interface, which
 * itself listens on loopback.
 */
function opsListener() {
  const routes = [
    { name: "ops.ready", match: { path: "/ready" }, route: { cluster: "envoy_admin", timeout: "2s" } },
    { name: "ops.metrics", match: { path: "/stats/prometheus" }, route: { cluster: "envoy_admin", timeout: "5s" } },
    {
      name: "ops.other",
      match: { prefix: "/" },
      direct_response: { status: 404, body: { inline_string: "only /ready and /stats/prometheus are served here" } },
    },
  ];
  const connectionManager = {
    name: "envoy.filters.network.http_connection_manager",
    typed_config: {
      "@type": type("envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"),
      stat_prefix: "ops",
      codec_type: "AUTO",
      http_filters: [{ name: "envoy.filters.http.router", typed_config: { "@type": type("envoy.extensions.filters.http.router.v3.Router") } }],
      route_config: { name: "ops", virtual_hosts: [{ name: "ops", domains: ["*"], routes }] },
    },
  };
  return { name: "ops", address: address("0.0.0.0", gatewayPorts.ops), filter_chains: [{ filters: [connectionManager] }] };
}

const http2Upstream = {
  "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
    "@type": type("envoy.extensions.upstreams.http.v3.HttpProtocolOptions"),
    explicit_http_config: { http2_protocol_options: { connection_keepalive: { interval: "30s", timeout: "5s" } } },
  },
};

function cluster(name: string, host: string, port: number, extra: Record<string, unknown> = {}) {
  return {
    name,
    type: "STRICT_DNS",
    dns_lookup_family: "V4_ONLY",
    lb_policy: "ROUND_ROBIN",
    connect_timeout: "1s",
    load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address: address(host, port) } }] }] },
    ...extra,
  };
}

/** What every application cluster has: health checks, outlier detection, circuit breakers. */
function resilience(healthCheck: Record<string, unknown>) {
  return {
    health_checks: [{ timeout: "1s", interval: "5s", no_traffic_interval: "5s", unhealthy_threshold: 2, healthy_threshold: 1, ...healthCheck }],
    outlier_detection: { consecutive_5xx: 5, consecutive_gateway_failure: 3, interval: "5s", base_ejection_time: "15s", max_ejection_percent: 50 },
    circuit_breakers: {
      thresholds: [
        {
          priority: "DEFAULT",
          max_connections: 1024,
          max_pending_requests: 1024,
          max_requests: 1024,
          // Retries may add at most a fifth on top of the calls in flight.
          retry_budget: { budget_percent: { value: 20 }, min_retry_concurrency: 3 },
        },
      ],
    },
  };
}

function clusters(services: EdgeService[]) {
  const identity = services.find((s) => s.name === "identity") as EdgeService;
  const bff = (serviceCatalog as readonly ServiceEntry[]).find((s) => s.name === "bff");
  if (!bff) throw new Error("the catalog has no bff: the gateway has nowhere to send the web UI");
  return [
    ...services.map((s) => cluster(s.name, s.name, s.grpcPort, { typed_extension_protocol_options: http2Upstream, ...resilience({ grpc_health_check: {} }) })),
    cluster("bff", "bff", bff.httpPort, resilience({ http_health_check: { path: "/healthz" } })),
    cluster("identity_jwks", "identity", identity.httpPort),
    cluster("jaeger", otlpCollector.host, otlpCollector.port, { typed_extension_protocol_options: http2Upstream }),
    { ...cluster("envoy_admin", "127.0.0.1", gatewayPorts.admin), type: "STATIC" },
  ];
}

/** The whole bootstrap, as an object. */
export async function envoyBootstrap(): Promise<Record<string, unknown>> {
  const services = await loadEdgeServices();
  return {
    node: { id: "gateway", cluster: "gateway" },
    admin: { address: address("127.0.0.1", gatewayPorts.admin) },
    overload_manager: {
      resource_monitors: [
        {
          name: "envoy.resource_monitors.global_downstream_max_connections",
          typed_config: {
            "@type": type("envoy.extensions.resource_monitors.downstream_connections.v3.DownstreamConnectionsConfig"),
            max_active_downstream_connections: 10000,
          },
        },
      ],
    },
    static_resources: { listeners: listeners(services), clusters: clusters(services) },
  };
}

/** The file's text: a header saying where it comes from, then the YAML. */
export async function envoyYaml(): Promise<string> {
  const { stringify } = await import("yaml");
  const header = [
    '# The Envoy gateway: the one entry point of Bazaar (DESIGN.md, "The request paths").',
    "# GENERATED by `bun run generate:gateway` from platform/src/service-catalog.ts and each",
    "# service's access declarations (services/<name>/src/rpc.ts). Do not edit: change those",
    "# and regenerate; a test fails while this file is stale, and another parses it strictly",
    "# against Envoy's own v3 API protos (gateway/check/envoy-strict.ts).",
    "",
  ].join("\n");
  return header + stringify(await envoyBootstrap(), { lineWidth: 0, aliasDuplicateObjects: true });
}

if (import.meta.main) {
  const target = `${repositoryRoot}gateway/envoy.yaml`;
  await Bun.write(target, await envoyYaml());
  process.stdout.write(`wrote ${target}\n`);
}
