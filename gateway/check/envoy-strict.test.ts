import { describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { checkEnvoyConfig, checkEnvoyYaml, loadEnvoyProtos, parseEnvoyYaml } from "./envoy-strict.ts";

const HCM = "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";
const HCM_URL = `type.googleapis.com/${HCM}`;
const ROUTER_URL = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router";
const HTTP_OPTIONS_URL = "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions";
const JWT_AUTHN = "envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication";

/** A small bootstrap in the shape of the gateway's: one listener, one HCM, one h2 upstream. */
const BOOTSTRAP = `
admin:
  address:
    socket_address: { address: 127.0.0.1, port_value: 9901 }
static_resources:
  listeners:
  - name: ingress
    address:
      socket_address: { address: 0.0.0.0, port_value: 8080 }
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": ${HCM_URL}
          stat_prefix: ingress_http
          codec_type: AUTO
          route_config:
            name: local_route
            virtual_hosts:
            - name: bff
              domains: ["*"]
              routes:
              - match: { prefix: "/" }
                route: { cluster: bff, timeout: 15s }
          http_filters:
          - name: envoy.filters.http.router
            typed_config:
              "@type": ${ROUTER_URL}
  clusters:
  - name: bff
    type: STRICT_DNS
    connect_timeout: 1s
    lb_policy: ROUND_ROBIN
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": ${HTTP_OPTIONS_URL}
        explicit_http_config:
          http2_protocol_options: {}
    load_assignment:
      cluster_name: bff
      endpoints:
      - lb_endpoints:
        - endpoint:
            address:
              socket_address: { address: bff, port_value: 3000 }
`;

const LISTENER = "static_resources.listeners[0]";
const HCM_PATH = `${LISTENER}.filter_chains[0].filters[0].typed_config(${HCM})`;
const ROUTE_PATH = `${HCM_PATH}.route_config.virtual_hosts[0].routes[0]`;
const CLUSTER = "static_resources.clusters[0]";

// biome-ignore lint/suspicious/noExplicitAny: fixtures are untyped YAML documents, changed in place by each case.
type Json = Record<string, any>;

/** The fixture as Envoy would read it, changed by `mutate`, and the errors the checker finds. */
function errorsAfter(mutate: (config: Json) => void): string[] {
  const config = parseEnvoyYaml(BOOTSTRAP).value as Json;
  mutate(config);
  return checkEnvoyConfig(config).errors;
}
const hcmOf = (config: Json) => config.static_resources.listeners[0].filter_chains[0].filters[0].typed_config;
const routeOf = (config: Json) => hcmOf(config).route_config.virtual_hosts[0].routes[0];
const clusterOf = (config: Json) => config.static_resources.clusters[0];

describe("a valid bootstrap", () => {
  test("passes with no errors and reports the typed configs it resolved", () => {
    const result = checkEnvoyYaml(BOOTSTRAP);
    expect(result.errors).toEqual([]);
    expect(result.typedConfigs).toEqual([HCM_URL, ROUTER_URL, HTTP_OPTIONS_URL].sort());
    expect(result.messageTypes).toContain("envoy.config.bootstrap.v3.Bootstrap");
    expect(result.messageTypes).toContain(HCM);
    expect(result.messageTypes).toContain("google.protobuf.Duration");
  });

  test("accepts json names (lowerCamel) as well as proto field names", () => {
    const errors = errorsAfter((config) => {
      const cluster = clusterOf(config);
      cluster.lbPolicy = cluster.lb_policy;
      cluster.connectTimeout = "0.25s";
      delete cluster.lb_policy;
      delete cluster.connect_timeout;
      hcmOf(config).statPrefix = "ingress";
      delete hcmOf(config).stat_prefix;
      config.staticResources = config.static_resources;
      delete config.static_resources;
    });
    expect(errors).toEqual([]);
  });

  test("accepts the message forms Envoy's parser also takes: a Duration as {seconds, nanos}, a wrapper bare", () => {
    const errors = errorsAfter((config) => {
      clusterOf(config).connect_timeout = { seconds: 1, nanos: 500_000_000 };
      clusterOf(config).per_connection_buffer_limit_bytes = 32768;
      routeOf(config).route.timeout = "0.000000001s";
    });
    expect(errors).toEqual([]);
  });

  test("checks the message a TypedStruct names, as Envoy unpacks it", () => {
    const errors = errorsAfter((config) => {
      hcmOf(config).http_filters[0].typed_config = {
        "@type": "type.googleapis.com/xds.type.v3.TypedStruct",
        type_url: ROUTER_URL,
        value: { dynamic_stats: true, bogus: 1 },
      };
    });
    expect(errors).toEqual([
      `${HCM_PATH}.http_filters[0].typed_config(xds.type.v3.TypedStruct).value(envoy.extensions.filters.http.router.v3.Router): unknown field "bogus" (not a field of envoy.extensions.filters.http.router.v3.Router)`,
    ]);
  });
});

describe("a broken copy fails with an error that names the problem", () => {
  test("an unknown field at the top level", () => {
    expect(errorsAfter((config) => (config.typo = 1))).toEqual(['(root): unknown field "typo" (not a field of envoy.config.bootstrap.v3.Bootstrap)']);
  });

  test("an unknown field inside a typed_config, with a suggestion for a near miss", () => {
    const errors = errorsAfter((config) => {
      hcmOf(config).http_filters[0].typo = true;
      hcmOf(config).stat_prefx = "x";
    });
    expect(errors).toEqual([
      `${HCM_PATH}.http_filters[0]: unknown field "typo" (not a field of envoy.extensions.filters.network.http_connection_manager.v3.HttpFilter)`,
      `${HCM_PATH}: unknown field "stat_prefx" (did you mean "stat_prefix"?)`,
    ]);
  });

  test("a field removed from the API (a reserved name)", () => {
    expect(errorsAfter((config) => (clusterOf(config).hosts = []))).toEqual([
      `${CLUSTER}: unknown field "hosts" (removed from envoy.config.cluster.v3.Cluster; the name is reserved)`,
    ]);
  });

  test("a misspelled enum name", () => {
    expect(errorsAfter((config) => (clusterOf(config).lb_policy = "ROUND_ROBBIN"))).toEqual([
      `${CLUSTER}.lb_policy: unknown enum value "ROUND_ROBBIN" for envoy.config.cluster.v3.Cluster.LbPolicy (did you mean "ROUND_ROBIN"?)`,
    ]);
  });

  test("an enum name in the wrong case, which Envoy would tolerate, asks for the declared spelling", () => {
    expect(errorsAfter((config) => (clusterOf(config).type = "strict_dns"))).toEqual([
      `${CLUSTER}.type: unknown enum value "strict_dns" for envoy.config.cluster.v3.Cluster.DiscoveryType (write "STRICT_DNS": Envoy matches enum names case-insensitively, but the declared name is upper case)`,
    ]);
  });

  test("an enum number that is not a defined value", () => {
    expect(errorsAfter((config) => (clusterOf(config).lb_policy = 42))).toEqual([
      `${CLUSTER}.lb_policy: 42 is not a defined value of envoy.config.cluster.v3.Cluster.LbPolicy (expected one of ROUND_ROBIN, LEAST_REQUEST, RING_HASH, RANDOM, MAGLEV, CLUSTER_PROVIDED, LOAD_BALANCING_POLICY_CONFIG)`,
    ]);
  });

  test("wrong value types: a string for a list, letters for a port, a number for a string", () => {
    const errors = errorsAfter((config) => {
      hcmOf(config).route_config.virtual_hosts[0].domains = "*";
      config.admin.address.socket_address.port_value = "abc";
      hcmOf(config).stat_prefix = 123;
    });
    expect(errors).toEqual([
      'admin.address.socket_address.port_value: expected an integer (uint32), got string "abc"',
      `${HCM_PATH}.stat_prefix: expected a string, got number 123`,
      `${HCM_PATH}.route_config.virtual_hosts[0].domains: expected a list, got string "*" (a lone value passes only through protobuf's legacy JSON leniency; write a list)`,
    ]);
  });

  test("YAML scalars are typed the way Envoy types them: unquoted yes is a boolean, 1.5 a string", () => {
    const result = checkEnvoyYaml(BOOTSTRAP.replace("stat_prefix: ingress_http", "stat_prefix: yes").replace("name: bff\n    type", "name: 1.5\n    type"));
    expect(result.errors).toEqual([`${HCM_PATH}.stat_prefix: expected a string, got boolean true`]);
  });

  test("a malformed duration and a port above its PGV range", () => {
    const errors = errorsAfter((config) => {
      clusterOf(config).connect_timeout = "1 s";
      config.admin.address.socket_address.port_value = 70000;
    });
    expect(errors).toEqual([
      "admin.address.socket_address.port_value: must be at most 65535, got 70000",
      `${CLUSTER}.connect_timeout: expected a duration such as "1.5s" (digits, optional fraction, then "s"), got string "1 s"`,
    ]);
  });

  test("missing required fields: an HCM without stat_prefix, a cluster without name, a virtual host without domains", () => {
    const errors = errorsAfter((config) => {
      delete hcmOf(config).stat_prefix;
      delete clusterOf(config).name;
      delete hcmOf(config).route_config.virtual_hosts[0].domains;
    });
    expect(errors).toEqual([
      `${HCM_PATH}.route_config.virtual_hosts[0]: missing required field "domains" (needs at least 1 item)`,
      `${HCM_PATH}: missing required field "stat_prefix" (must be at least 1 character long)`,
      `${CLUSTER}: missing required field "name" (must be at least 1 character long)`,
    ]);
  });

  test("a type URL that names no message, and an Any without @type", () => {
    const errors = errorsAfter((config) => {
      hcmOf(config).http_filters[0].typed_config["@type"] = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Routr";
      delete clusterOf(config).typed_extension_protocol_options["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]["@type"];
    });
    expect(errors).toEqual([
      `${HCM_PATH}.http_filters[0].typed_config["@type"]: unknown type URL "type.googleapis.com/envoy.extensions.filters.http.router.v3.Routr": no message "envoy.extensions.filters.http.router.v3.Routr" in Envoy's API protos (as vendored by @grpc/grpc-js-xds, which leaves out contrib extensions)`,
      `${CLUSTER}.typed_extension_protocol_options["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]: missing "@type" (an Any needs "@type: type.googleapis.com/<message name>")`,
    ]);
  });

  test("a v2-era type URL, which Envoy v3 has no extension for", () => {
    const errors = errorsAfter((config) => {
      hcmOf(config).http_filters[0].typed_config["@type"] = "type.googleapis.com/envoy.config.filter.http.router.v2.Router";
    });
    expect(errors).toHaveLength(1);
    expect(errors[0]).toStartWith(`${HCM_PATH}.http_filters[0].typed_config["@type"]: cannot check type "envoy.config.filter.http.router.v2.Router"`);
  });

  test("two members of one oneof, and a required oneof left empty", () => {
    expect(errorsAfter((config) => (routeOf(config).route.cluster_header = "x-cluster"))).toEqual([
      `${ROUTE_PATH}.route: "cluster" and "cluster_header" are members of oneof "cluster_specifier"; set only one`,
    ]);
    expect(errorsAfter((config) => delete routeOf(config).route)).toEqual([
      `${ROUTE_PATH}: missing required oneof "action": set one of "route", "redirect", "direct_response", "filter_action", "non_forwarding_action"`,
    ]);
  });

  test("the same field under both of its names", () => {
    expect(errorsAfter((config) => (clusterOf(config).lbPolicy = "ROUND_ROBIN"))).toEqual([
      `${CLUSTER}: field "lb_policy" is set twice (as "lb_policy" and "lbPolicy")`,
    ]);
  });

  test("a deprecated field", () => {
    expect(errorsAfter((config) => (clusterOf(config).http2_protocol_options = {}))).toEqual([
      `${CLUSTER}.http2_protocol_options: deprecated field "http2_protocol_options" (deprecated since API 3.0: Envoy warns and will remove it)`,
    ]);
  });

  test("all problems are collected, not only the first", () => {
    const errors = errorsAfter((config) => {
      config.typo = 1;
      clusterOf(config).lb_policy = "ROUND_ROBBIN";
      delete hcmOf(config).stat_prefix;
    });
    expect(errors).toHaveLength(3);
  });
});

describe("Envoy's API protos", () => {
  test("load every vendored proto except those whose imports @grpc/grpc-js-xds does not ship", () => {
    const protos = loadEnvoyProtos();
    expect(protos.files).toBeGreaterThan(400);
    // The frozen v2 tree needs envoy/api/v2 and envoy/admin/v2alpha; a few v3 files need
    // OpenTelemetry, OpenCensus or Prometheus protos. Anything else would be a loading problem.
    const shippedElsewhere = /^(envoy\/api\/v2\/|envoy\/admin\/v2alpha\/|opentelemetry\/|opencensus\/|io\/prometheus\/)/;
    const unexpected = protos.skipped.filter((entry) => !shippedElsewhere.test(entry.missingImport));
    expect(unexpected).toEqual([]);
  });
});

describe("gateway/envoy.yaml", () => {
  const file = join(import.meta.dir, "..", "envoy.yaml");
  const read = (): string => {
    // Fail, not skip: the gateway config is meant to exist, and a missing one must be noticed.
    if (!existsSync(file)) throw new Error(`${file} does not exist: the gateway's Envoy config should be generated there`);
    return readFileSync(file, "utf8");
  };

  test("passes the strict check with no errors", () => {
    expect(checkEnvoyYaml(read()).errors).toEqual([]);
  });

  test("a renamed field deep inside the jwt_authn config and a misspelled lb_policy are both reported", () => {
    const config = parseEnvoyYaml(read()).value as Json;
    const jwt = findTypedConfig(config, JWT_AUTHN);
    if (!jwt) throw new Error(`gateway/envoy.yaml has no ${JWT_AUTHN} typed_config to mutate`);
    const renamed = renameDeepestKey(jwt.providers ?? jwt);
    const clusters = (config.static_resources ?? config.staticResources)?.clusters;
    if (!clusters?.[0]) throw new Error("gateway/envoy.yaml has no static clusters to mutate");
    delete clusters[0].lbPolicy;
    clusters[0].lb_policy = "ROUND_ROBBIN";

    const errors = checkEnvoyConfig(config).errors;
    expect(errors.filter((error) => error.includes(`(${JWT_AUTHN})`) && error.includes(`unknown field "${renamed}"`))).toHaveLength(1);
    expect(errors.filter((error) => /^static(_r|R)esources\.clusters\[0\]\.lb_policy: unknown enum value "ROUND_ROBBIN"/.test(error))).toHaveLength(1);
  });
});

/** The first Any payload anywhere in `value` whose @type names `typeName`. */
function findTypedConfig(value: unknown, typeName: string): Json | undefined {
  if (Array.isArray(value)) {
    for (const item of value) {
      const found = findTypedConfig(item, typeName);
      if (found) return found;
    }
  } else if (value && typeof value === "object") {
    if ((value as Json)["@type"] === `type.googleapis.com/${typeName}`) return value as Json;
    for (const item of Object.values(value)) {
      const found = findTypedConfig(item, typeName);
      if (found) return found;
    }
  }
  return undefined;
}

/** Renames the most deeply nested object key under `root` to `<key>_typo`; returns the new name. */
function renameDeepestKey(root: Json): string {
  let deepest: { parent: Json; key: string; depth: number } | undefined;
  const visit = (value: unknown, depth: number) => {
    if (Array.isArray(value)) {
      for (const item of value) visit(item, depth + 1);
    } else if (value && typeof value === "object") {
      for (const [key, item] of Object.entries(value)) {
        // Map keys (provider names) are data, not field names; skip renaming those.
        if (value !== root && (!deepest || depth > deepest.depth)) deepest = { parent: value as Json, key, depth };
        visit(item, depth + 1);
      }
    }
  };
  visit(root, 0);
  if (!deepest) throw new Error("the jwt_authn config has no nested fields to rename");
  const renamed = `${deepest.key}_typo`;
  deepest.parent[renamed] = deepest.parent[deepest.key];
  delete deepest.parent[deepest.key];
  return renamed;
}
