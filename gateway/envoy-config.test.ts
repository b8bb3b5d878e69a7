// biome-ignore-all lint/suspicious/noExplicitAny: these tests walk the parsed envoy.yaml, an untyped document whose shape is what they check.
import { describe, expect, test } from "bun:test";
import { parse } from "yaml";
import { serviceCatalog, type ServiceEntry } from "@bazaar/platform/service-catalog";
import { type EdgeService, envoyYaml, gatewayPorts, loadEdgeServices } from "./envoy-config.ts";

// The committed gateway config agrees with the service catalog and with each service's access
// declarations. These tests read gateway/envoy.yaml as Envoy would (first matching route, first
// matching JWT rule), so they hold for the file itself, generated or edited by hand.

const file = await Bun.file(new URL("./envoy.yaml", import.meta.url)).text();
const config = parse(file, { merge: true }) as any;
const services: EdgeService[] = await loadEdgeServices();

const listener = (name: string) => config.static_resources.listeners.find((l: any) => l.name === name);
const hcmOf = (l: any) => l.filter_chains[0].filters.find((f: any) => f.name === "envoy.filters.network.http_connection_manager").typed_config;
const hcm = hcmOf(listener("http"));
const routes: any[] = hcm.route_config.virtual_hosts[0].routes;
const jwt = hcm.http_filters.find((f: any) => f.name === "envoy.filters.http.jwt_authn").typed_config;
const clusters: any[] = config.static_resources.clusters;

interface Request {
  path: string;
  grpc: boolean;
  method?: string;
  headers?: Record<string, string>;
}

/** Envoy's RouteMatch, for the parts the gateway uses: path / prefix, grpc, exact headers. */
function matches(match: any, req: Request): boolean {
  if (match.path !== undefined && match.path !== req.path) return false;
  if (match.prefix !== undefined && !req.path.startsWith(match.prefix)) return false;
  if (match.grpc !== undefined && !req.grpc) return false;
  const headers: Record<string, string> = { ":method": req.method ?? "POST", ...(req.grpc ? { "content-type": "application/grpc" } : {}), ...req.headers };
  for (const h of match.headers ?? []) if (headers[h.name] !== h.string_match.exact) return false;
  return true;
}
const routeFor = (req: Request) => routes.find((r) => matches(r.match, req));
const jwtRuleFor = (req: Request) => (jwt.rules as any[]).find((r) => matches(r.match, req));

describe("gateway/envoy.yaml", () => {
  test("is what `bun run generate:gateway` makes from the catalog and the access declarations", async () => {
    expect(file, "gateway/envoy.yaml is stale: run `bun run generate:gateway` and commit it").toBe(await envoyYaml());
  });

  test("has a cluster per catalog process at its name and catalog port, over HTTP/2 for gRPC, health-checked", () => {
    for (const entry of serviceCatalog as readonly ServiceEntry[]) {
      const c = clusters.find((x) => x.name === entry.name);
      expect(c, `no cluster for ${entry.name}`).toBeDefined();
      const address = c.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address;
      expect({ host: address.address, port: address.port_value }).toEqual({ host: entry.name, port: entry.grpcPort ?? entry.httpPort });
      expect(c.health_checks?.length, `${entry.name} has no active health check`).toBe(1);
      expect(c.outlier_detection, `${entry.name} has no outlier detection`).toBeDefined();
      expect(c.circuit_breakers.thresholds[0].retry_budget).toBeDefined();
      if (entry.grpcPort !== undefined) {
        expect(c.health_checks[0].grpc_health_check).toBeDefined();
        expect(
          c.typed_extension_protocol_options["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"].explicit_http_config.http2_protocol_options,
        ).toBeDefined();
      }
    }
    const jwks = clusters.find((x) => x.name === "identity_jwks").load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address;
    expect(jwks).toEqual({ address: "identity", port_value: (serviceCatalog as readonly ServiceEntry[]).find((s) => s.name === "identity")!.httpPort });
  });

  test("routes every RPC of every service to that service, with a timeout, and retries only reads", () => {
    let rpcs = 0;
    for (const s of services) {
      for (const m of s.methods) {
        const r = routeFor({ path: m.path, grpc: true });
        expect(r?.route?.cluster, `${m.path} is not routed to ${s.name}`).toBe(s.name);
        expect(r.route.timeout).toMatch(/^[1-9]\d*s$/);
        expect(r.route.retry_policy !== undefined, `${m.path}: retries only for idempotent reads`).toBe(m.idempotentRead);
        rpcs++;
      }
    }
    expect(rpcs).toBeGreaterThan(30);
  });

  test("routes health and reflection to the service named in bazaar-service, or the catalog without it", () => {
    for (const s of services) {
      expect(
        routeFor({ path: "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", grpc: true, headers: { "bazaar-service": s.name } }).route.cluster,
      ).toBe(s.name);
      expect(routeFor({ path: "/grpc.health.v1.Health/Check", grpc: true, headers: { "bazaar-service": s.name } }).route.cluster).toBe(s.name);
    }
    expect(routeFor({ path: "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", grpc: true }).route.cluster).toBe("catalog");
  });

  test("sends the web UI and /api to the BFF; server-sent events stream with no route timeout", () => {
    expect(routeFor({ path: "/", grpc: false, method: "GET" }).route.cluster).toBe("bff");
    expect(routeFor({ path: "/api/products", grpc: false, method: "GET" }).route.cluster).toBe("bff");
    expect(routeFor({ path: "/api/cart/items", grpc: false, method: "POST" }).route.retry_policy).toBeUndefined();
    const events = routeFor({ path: "/api/events", grpc: false, method: "GET" });
    expect(events.route).toMatchObject({ cluster: "bff", timeout: "0s" });
    expect(events.route.idle_timeout).toMatch(/^\d+s$/);
  });

  test("answers a gRPC call to a service it does not know itself instead of passing it to the BFF", () => {
    expect(routeFor({ path: "/bazaar.unknown.v1.UnknownService/Do", grpc: true }).direct_response.status).toBe(404);
  });

  test("lets the RPCs each service declares public through without a token and requires one for every other and every deprecated one", () => {
    let open = 0;
    let closed = 0;
    for (const s of services) {
      for (const m of s.methods) {
        const rule = jwtRuleFor({ path: m.path, grpc: true });
        expect(rule, `no JWT rule matches ${m.path}`).toBeDefined();
        if (m.access === "public" && !m.deprecated) {
          expect(rule.requires, `${m.path} is public but the gateway asks for a token`).toBeUndefined();
          open++;
        } else {
          expect(rule.requires, `${m.path} is ${m.access}-only but passes the gateway without a token`).toEqual({ provider_name: "bazaar" });
          closed++;
        }
      }
    }
    expect(jwtRuleFor({ path: "/bazaar.identity.v1.IdentityService/IssueServiceToken", grpc: true }).requires).toEqual({ provider_name: "bazaar" });
    expect(open).toBeGreaterThan(5);
    expect(closed).toBeGreaterThan(15);
  });

  test("passes reflection only with a token, and routes no /metrics to the BFF", () => {
    expect(jwtRuleFor({ path: "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", grpc: true }).requires).toEqual({ provider_name: "bazaar" });
    expect(jwtRuleFor({ path: "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", grpc: true }).requires).toEqual({ provider_name: "bazaar" });
    expect(jwtRuleFor({ path: "/grpc.health.v1.Health/Check", grpc: true }).requires).toBeUndefined();
    const metrics = routeFor({ path: "/metrics", grpc: false, method: "GET" });
    expect(metrics.route).toBeUndefined();
    expect(metrics.direct_response.status).toBe(404);
  });

  test("ends the JWT rules with catch-alls: unknown gRPC paths need a token, BFF traffic may carry none", () => {
    const rules = jwt.rules as any[];
    expect(rules.at(-1).match).toEqual({ prefix: "/" });
    expect(jwtRuleFor({ path: "/bazaar.unknown.v1.UnknownService/Do", grpc: true }).requires).toEqual({ provider_name: "bazaar" });
    const bff = jwtRuleFor({ path: "/api/cart", grpc: false, method: "GET" });
    expect(bff.requires.requires_any.requirements).toContainEqual({ allow_missing: {} });
  });

  test("verifies identity's tokens: its issuer, audience and JWKS, fetched asynchronously and cached", () => {
    const provider = jwt.providers.bazaar;
    expect(provider.issuer).toBe("https://identity.bazaar.local");
    expect(provider.audiences).toEqual(["bazaar"]);
    expect(provider.remote_jwks.http_uri).toMatchObject({ uri: "http://identity:9101/.well-known/jwks.json", cluster: "identity_jwks" });
    expect(provider.remote_jwks.async_fetch).toBeDefined();
    expect(provider.remote_jwks.cache_duration).toMatch(/^\d+s$/);
  });

  test("listens on 8080 and 8443 (TLS, HSTS) with the same routes, and keeps the admin interface on loopback", () => {
    expect(listener("http").address.socket_address.port_value).toBe(gatewayPorts.http);
    const https = listener("https");
    expect(https.address.socket_address.port_value).toBe(gatewayPorts.https);
    expect(https.filter_chains[0].transport_socket.name).toBe("envoy.transport_sockets.tls");
    const tlsRoutes = hcmOf(https).route_config;
    expect(tlsRoutes.virtual_hosts[0].routes).toEqual(routes);
    expect(tlsRoutes.response_headers_to_add[0].header.key).toBe("strict-transport-security");
    expect(hcm.route_config.request_headers_to_remove).toContain("x-jwt-payload");
    expect(config.admin.address.socket_address.address).toBe("127.0.0.1");
    const ops = hcmOf(listener("ops"))
      .route_config.virtual_hosts[0].routes.map((r: any) => r.match.path)
      .filter(Boolean);
    expect(ops.sort()).toEqual(["/ready", "/stats/prometheus"]);
  });

  test("limits the rate of sign-in, sign-up, Login, Register and checkout more tightly than the rest", () => {
    const limited = (req: Request) => routeFor(req).typed_per_filter_config?.["bazaar.local_ratelimit.sensitive"]?.token_bucket;
    for (const path of ["/api/auth/signin", "/api/auth/signup", "/api/checkout"]) expect(limited({ path, grpc: false }), path).toBeDefined();
    for (const rpc of ["Login", "Register"]) expect(limited({ path: `/bazaar.identity.v1.IdentityService/${rpc}`, grpc: true }), rpc).toBeDefined();
    expect(limited({ path: "/api/products", grpc: false, method: "GET" })).toBeUndefined();
  });
});
