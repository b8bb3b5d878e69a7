import { describe, expect, test } from "bun:test";
import { z } from "zod";
import { fileSdTargets, monitoringPorts } from "./dev-monitoring.ts";
import { replicasVar } from "./dev-env.ts";
import { instances, maxReplicas, parseReplicas, peerAddresses, replicasArg } from "./dev-replicas.ts";
import { serviceCatalog, type ServiceEntry } from "@bazaar/platform/service-catalog";

const entries = serviceCatalog as readonly ServiceEntry[];

describe("--replicas", () => {
  test("catalog=3,orders=2 names instances by service; empty names none", () => {
    expect([...parseReplicas("catalog=3,orders=2")]).toEqual([
      ["catalog", 3],
      ["orders", 2],
    ]);
    expect(parseReplicas(" catalog=1 ").get("catalog")).toBe(1);
    expect(parseReplicas("").size).toBe(0);
  });

  test("a bad value is refused naming what to fix", () => {
    expect(() => parseReplicas("catalog=0")).toThrow('"catalog=0": the count must be a whole number from 1 to 9, got "0"');
    expect(() => parseReplicas("catalog=x")).toThrow('the count must be a whole number from 1 to 9, got "x"');
    expect(() => parseReplicas(`catalog=${maxReplicas + 1}`)).toThrow("from 1 to 9");
    expect(() => parseReplicas("nope=2")).toThrow('"nope=2": nope is not a process of the catalog; replicas are for identity, catalog');
    expect(parseReplicas("bff=2").get("bff")).toBe(2);
    expect(() => parseReplicas("catalog")).toThrow('"catalog" is not service=count (e.g. catalog=3)');
    expect(() => parseReplicas("catalog=2,catalog=3")).toThrow("catalog is named twice");
  });

  test("DEV_REPLICAS fails its schema naming the variable; the flag is read as --replicas X or --replicas=X", () => {
    const schema = z.object({ DEV_REPLICAS: replicasVar });
    expect(schema.parse({}).DEV_REPLICAS.size).toBe(0);
    expect(schema.parse({ DEV_REPLICAS: "catalog=3" }).DEV_REPLICAS.get("catalog")).toBe(3);
    const bad = schema.safeParse({ DEV_REPLICAS: "catalog=0" });
    expect(bad.error?.issues[0]?.path).toEqual(["DEV_REPLICAS"]);
    expect(bad.error?.issues[0]?.message).toContain("from 1 to 9");
    expect(replicasArg(["--replicas", "catalog=3,orders=2"])).toBe("catalog=3,orders=2");
    expect(replicasArg(["--replicas=catalog=3"])).toBe("catalog=3");
    expect(replicasArg([])).toBeUndefined();
    expect(() => replicasArg(["--replicas"])).toThrow("--replicas needs a value");
  });
});

describe("instances", () => {
  test("instance k of a service listens on its catalog ports + k*100, with the port offset applied, and is named service-(k+1)", () => {
    const all = instances(entries, parseReplicas("catalog=3,orders=2"), (p) => p + 1000);
    const catalog = all.filter((i) => i.entry.name === "catalog");
    expect(catalog.map((i) => [i.name, i.grpcPort, i.httpPort])).toEqual([
      ["catalog-1", 51052, 10102],
      ["catalog-2", 51152, 10202],
      ["catalog-3", 51252, 10302],
    ]);
    expect(all.filter((i) => i.entry.name === "orders").map((i) => i.name)).toEqual(["orders-1", "orders-2"]);
    expect(all.filter((i) => i.entry.name === "inventory").map((i) => [i.name, i.grpcPort])).toEqual([["inventory", 51053]]);
    expect(all).toHaveLength(entries.length + 3);
  });

  test("with every service at the most replicas, no two ports collide, nor with a monitoring port", () => {
    const all = instances(entries, new Map(entries.map((e) => [e.name, maxReplicas])));
    const ports = all.flatMap((i) => [i.grpcPort, i.httpPort, i.metricsPort].filter((p) => p !== undefined));
    expect(new Set(ports).size).toBe(ports.length);
    for (const p of Object.values(monitoringPorts)) expect(ports).not.toContain(p);
    for (const p of ports) expect(p).toBeLessThanOrEqual(65535);
  });

  test("each caller's <NAME>_ADDR lists every instance of that service", () => {
    const addrs = peerAddresses(instances(entries, parseReplicas("catalog=3")));
    expect(addrs.CATALOG_ADDR).toBe("127.0.0.1:50052,127.0.0.1:50152,127.0.0.1:50252");
    expect(addrs.ORDERS_ADDR).toBe("127.0.0.1:50055");
    expect(addrs.BFF_ADDR).toBeUndefined();
  });

  test("BFF instance k serves shoppers on 3000 + k*100 and metrics on 9100 + k*100", () => {
    const bffs = instances(entries, parseReplicas("bff=2")).filter((i) => i.entry.name === "bff");
    expect(bffs.map((i) => [i.name, i.httpPort, i.metricsPort])).toEqual([
      ["bff-1", 3000, 9100],
      ["bff-2", 3100, 9200],
    ]);
  });
});

describe("Prometheus targets of replicas", () => {
  test("one bazaar.json target per instance, labelled with its service and, when replicated, its instance", () => {
    const all = instances(entries, parseReplicas("catalog=2"));
    const files = fileSdTargets(
      all.map((i) => ({ entry: i.entry, name: i.name, metricsPort: i.metricsPort ?? i.httpPort })),
      (p) => p,
    );
    const bazaar = files["bazaar.json"] ?? [];
    expect(bazaar.filter((t) => t.labels.service === "catalog")).toEqual([
      { targets: ["127.0.0.1:9102"], labels: { service: "catalog", instance: "catalog-1" } },
      { targets: ["127.0.0.1:9202"], labels: { service: "catalog", instance: "catalog-2" } },
    ]);
    expect(bazaar.filter((t) => t.labels.service === "orders")).toEqual([{ targets: ["127.0.0.1:9105"], labels: { service: "orders" } }]);
    expect(bazaar).toHaveLength(entries.length + 1);
  });
});
