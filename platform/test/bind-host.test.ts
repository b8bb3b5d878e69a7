import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { networkInterfaces } from "node:os";
import { z } from "zod";
import { commonEnv, parseEnv, portVar } from "@bazaar/platform/env";
import { probe, probeHost } from "@bazaar/platform/health-probe";
import { configureLogging } from "@bazaar/platform/log";
import { ServiceHost } from "@bazaar/platform/service";
import { CatalogService } from "@bazaar/proto/bazaar/catalog/v1/catalog_pb";

// Servers bind loopback unless BIND_HOST says otherwise: a developer's `bun run dev` must not
// offer gRPC (reflection included) and /metrics to everyone on the café's network.

/** This machine's first non-loopback IPv4 address, if it has one. */
const outsideAddress = Object.values(networkInterfaces())
  .flat()
  .find((a) => a && a.family === "IPv4" && !a.internal)?.address;

/** True when a TCP connection to host:port is accepted. */
function accepts(hostname: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    Bun.connect({
      hostname,
      port,
      socket: {
        open: (s) => {
          s.end();
          resolve(true);
        },
        data() {},
        connectError: () => resolve(false),
      },
    }).catch(() => resolve(false));
  });
}

/** A catalog host whose RPCs answer empty, with the environment a process parses from `vars`. */
function catalogHost(vars: Record<string, string>): ServiceHost {
  const empty = () => ({});
  return new ServiceHost("catalog", parseEnv(z.object({ ...commonEnv, GRPC_PORT: portVar(0), HTTP_PORT: portVar(0) }), vars)).addGrpc(
    CatalogService,
    { listProducts: empty, getProduct: empty, batchGetProducts: empty, listCategories: empty, createProduct: empty, updateProduct: empty },
    { listProducts: "public", getProduct: "public", batchGetProducts: "public", listCategories: "public", createProduct: "admin", updateProduct: "admin" },
  );
}

// BIND_HOST left unset, and set as compose.yaml sets it.
const host = catalogHost({});
const containerHost = catalogHost({ BIND_HOST: "0.0.0.0" });
let ports: { grpcPort?: number; httpPort: number };
let containerPorts: { grpcPort?: number; httpPort: number };

beforeAll(async () => {
  configureLogging("bind-host-test", "error");
  ports = await host.listen();
  containerPorts = await containerHost.listen();
});

afterAll(() => Promise.all([host.stop(), containerHost.stop()]));

describe("BIND_HOST", () => {
  test("defaults to loopback", () => {
    expect(parseEnv(z.object(commonEnv), {}).BIND_HOST).toBe("127.0.0.1");
  });

  test.skipIf(!outsideAddress)("a service started without BIND_HOST is not reachable on a non-loopback address", async () => {
    const address = outsideAddress!;
    for (const port of [ports.grpcPort!, ports.httpPort]) {
      expect(await accepts("127.0.0.1", port), `nothing answers on 127.0.0.1:${port}`).toBe(true);
      expect(await accepts(address, port), `${address}:${port} accepts connections from the network`).toBe(false);
    }
  });

  test("the container health probe reaches a process bound to every interface, at 127.0.0.1", async () => {
    const at = probeHost("0.0.0.0");
    expect(at).toBe("127.0.0.1");
    expect(await probe(`${at}:${containerPorts.grpcPort}`)).toBeUndefined();
    expect(await probe(`http://${at}:${containerPorts.httpPort}/healthz`)).toBeUndefined();
  });

  if (!outsideAddress) test.skip("(skipped: this machine has no non-loopback IPv4 address to try the service from)", () => {});
});
