import { describe, expect, test } from "bun:test";
import { z } from "zod";
import { authEnv, oauthClientEnv, serviceEnv } from "./env.ts";
import { defaultGrpcAddress, dependenciesOf, jwksUrl, peerEnv, serviceCatalog, serviceEntry, type ServiceName, tokenEndpointUrl } from "./service-catalog.ts";

describe("service catalog", () => {
  test("a service's env defaults are its catalog entry's ports and database", () => {
    const env = z.object(serviceEnv("catalog")).parse({});
    expect(env).toMatchObject({ GRPC_PORT: 50052, HTTP_PORT: 9102, DATABASE_URL: "postgres://postgres@127.0.0.1:5432/bazaar_catalog" });
    // Literal types: the port is 50052 to the compiler too, with no fallback needed.
    const port: 50052 = serviceEntry("catalog").grpcPort;
    expect(port).toBe(50052);
  });

  test("a service without a database gets ports and no DATABASE_URL", () => {
    const shape = serviceEnv("cart");
    expect(Object.keys(shape)).not.toContain("DATABASE_URL");
    expect(z.object(shape).parse({})).toMatchObject({ GRPC_PORT: 50054, HTTP_PORT: 9104 });
  });

  test("every gRPC service's env agrees with the catalog", () => {
    for (const entry of serviceCatalog) {
      if (!("grpcPort" in entry)) continue;
      const env = z.object(serviceEnv(entry.name)).parse({}) as { GRPC_PORT: number; HTTP_PORT: number; DATABASE_URL?: string };
      expect([env.GRPC_PORT, env.HTTP_PORT]).toEqual([entry.grpcPort, entry.httpPort]);
      expect(env.DATABASE_URL?.split("/").at(-1)).toBe("database" in entry ? entry.database : undefined);
    }
  });

  test("token and service-token defaults point at identity's catalog ports", () => {
    const identity = serviceEntry("identity");
    expect(z.object(authEnv).parse({}).JWKS_URL).toBe(`http://127.0.0.1:${identity.httpPort}/.well-known/jwks.json`);
    expect(z.object(oauthClientEnv("orders")).parse({})).toMatchObject({
      OAUTH_TOKEN_URL: `http://127.0.0.1:${identity.httpPort}/oauth2/token`,
      OAUTH_CLIENT_ID: "orders",
    });
    expect(jwksUrl("identity", 80)).toBe("http://identity:80/.well-known/jwks.json");
    expect(tokenEndpointUrl("identity", 80)).toBe("http://identity:80/oauth2/token");
    expect(peerEnv((name) => ({ http: name === "identity" ? 19101 : 1 })).OAUTH_TOKEN_URL).toBe("http://127.0.0.1:19101/oauth2/token");
    expect(defaultGrpcAddress("orders")).toBe("127.0.0.1:50055");
  });

  test("an unknown process name is an error that names it", () => {
    expect(() => serviceEntry("warehouse" as ServiceName)).toThrow("no process named warehouse in the service catalog");
  });

  test("a process's dependencies are its callees' gRPC ports, identity's HTTP port, its infrastructure and the OTLP endpoint", () => {
    expect(dependenciesOf(serviceEntry("inventory"))).toEqual([
      { peer: "identity", port: 50051 },
      { peer: "identity", port: 9101 },
      { peer: "catalog", port: 50052 },
      { infrastructure: "postgres", port: 5432 },
      { infrastructure: "rabbitmq", port: 5672 },
      { infrastructure: "otlp", port: 4318 },
    ]);
    expect(() => dependenciesOf({ name: "x", httpPort: 1, entry: "x.ts", calls: ["bff"] })).toThrow("x calls bff, which serves no gRPC in the service catalog");
  });
});
