/**
 * The chassis's gRPC client balances each call across a service's replicas (issue 13): given a
 * list of addresses (`<NAME>_ADDR=a:p,b:p`, as the dev runner's replicas) or a host name whose
 * every address is a replica (a Kubernetes headless Service), it sends the calls of one
 * long-lived channel round-robin, and goes on with the others when one replica stops. The
 * replicas are real GrpcServers on local ports serving CatalogService with counting handlers.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { status } from "@grpc/grpc-js";
import { z } from "zod";
import { hostPort } from "@bazaar/platform/env";
import { RpcError } from "@bazaar/platform/errors";
import { createClient, grpcTarget, repeatableMethods } from "@bazaar/platform/grpc/client";
import { GrpcServer, servedService } from "@bazaar/platform/grpc/server";
import { parsePeerAddresses } from "@bazaar/platform/host-port";
import { configureLogging } from "@bazaar/platform/log";
import { grpcClientRetries } from "@bazaar/platform/metrics";
import { eventually } from "@bazaar/testkit/eventually";
import { CatalogService } from "@bazaar/proto/bazaar/catalog/v1/catalog_pb";

/** bunfig's test timeout does not cover hooks (they stop at 5 s). */
const hookTimeoutMs = 30_000;

/** A served CatalogService whose ListProducts counts its calls; the replica's name travels back as the page token. */
async function startReplica(name: string, { hang = false, fail }: { hang?: boolean; fail?: () => RpcError } = {}) {
  const served = { calls: 0 };
  // A replica that hangs takes calls and never answers them, as one about to crash.
  const never = new Promise<never>(() => {});
  const service = servedService(
    CatalogService,
    {
      listProducts: () => {
        served.calls++;
        if (fail) throw fail();
        return hang ? never : { nextPageToken: name };
      },
      getProduct: () => ({}),
      batchGetProducts: () => ({}),
      listCategories: () => ({}),
      createProduct: () => {
        served.calls++;
        return hang ? never : { product: { id: name } };
      },
      updateProduct: () => ({}),
    },
    { listProducts: "public", getProduct: "public", batchGetProducts: "public", listCategories: "public", createProduct: "public", updateProduct: "admin" },
  );
  const server = new GrpcServer([service]);
  const port = await server.start(0, "127.0.0.1");
  let stopped = false;
  return {
    name,
    served,
    port,
    address: `127.0.0.1:${port}`,
    stop: async ({ graceMs = 1_000 } = {}) => {
      if (stopped) return;
      stopped = true;
      await server.shutdown({ drainMs: 0, graceMs });
    },
  };
}

type Replica = Awaited<ReturnType<typeof startReplica>>;

beforeAll(() => configureLogging("client-balancing-test", "error"));

describe("peer addresses", () => {
  test("a list of IPs becomes an ipv4:/ipv6: target, a host name a dns:/// one", () => {
    expect(grpcTarget("127.0.0.1:50052")).toBe("ipv4:127.0.0.1:50052");
    expect(grpcTarget("127.0.0.1:50052, 127.0.0.1:50152,10.0.0.7:50252")).toBe("ipv4:127.0.0.1:50052,127.0.0.1:50152,10.0.0.7:50252");
    expect(grpcTarget("[::1]:50052,[fd00::5]:50052")).toBe("ipv6:[::1]:50052,[fd00::5]:50052");
    expect(grpcTarget("catalog:50052")).toBe("dns:///catalog:50052");
    expect(grpcTarget("catalog.bazaar.svc.cluster.local:50052")).toBe("dns:///catalog.bazaar.svc.cluster.local:50052");
  });

  test("a bad entry is refused with what to fix", () => {
    expect(() => parsePeerAddresses("catalog")).toThrow('"catalog" is not host:port');
    expect(() => parsePeerAddresses("127.0.0.1:50052,")).toThrow('"" is not host:port');
    expect(() => parsePeerAddresses("127.0.0.1:0")).toThrow("a port 1-65535");
    expect(() => parsePeerAddresses("127.0.0.1:70000")).toThrow("a port 1-65535");
    expect(() => parsePeerAddresses("::1:50052")).toThrow("an IPv6 address in brackets");
    expect(() => parsePeerAddresses("[nope]:50052")).toThrow("is not an IPv6 address");
    expect(() => parsePeerAddresses("cat alog:50052")).toThrow("neither an IP address nor a host name");
    expect(() => parsePeerAddresses("catalog:50052,127.0.0.1:50152")).toThrow("a host name stands alone");
    expect(() => parsePeerAddresses("127.0.0.1:50052,[::1]:50052")).toThrow("not both");
  });

  test("an _ADDR variable with a bad entry fails its schema, naming the variable and the entry", () => {
    const schema = z.object({ CATALOG_ADDR: hostPort });
    expect(schema.parse({ CATALOG_ADDR: "127.0.0.1:50052,127.0.0.1:50152" }).CATALOG_ADDR).toBe("127.0.0.1:50052,127.0.0.1:50152");
    const result = schema.safeParse({ CATALOG_ADDR: "127.0.0.1:50052,127.0.0.1" });
    expect(result.success).toBe(false);
    expect(result.error?.issues[0]?.path).toEqual(["CATALOG_ADDR"]);
    expect(result.error?.issues[0]?.message).toContain('"127.0.0.1" is not host:port');
  });
});

describe("a client of three replicas", () => {
  let replicas: Replica[] = [];
  beforeAll(async () => {
    replicas = await Promise.all(["a", "b", "c"].map((name) => startReplica(name)));
  });
  afterAll(() => Promise.all(replicas.map((r) => r.stop())), hookTimeoutMs);

  test("30 calls on one channel are shared among all three, and one replica stopped leaves the calls to the others", async () => {
    const client = createClient(CatalogService, replicas.map((r) => r.address).join(","));
    try {
      // round_robin connects to every address; a call goes only to a READY one, so the
      // first calls may all land on the replica that connected first. Wait until all serve.
      await eventually(
        async () => {
          const seen = new Set<string>();
          for (let i = 0; i < 6; i++) seen.add((await client.listProducts({})).nextPageToken);
          expect(seen.size).toBe(3);
          return true;
        },
        { what: "every replica to serve a call", timeoutMs: 4_000 },
      );
      for (const r of replicas) r.served.calls = 0;
      for (let i = 0; i < 30; i++) await client.listProducts({});
      const shares = replicas.map((r) => r.served.calls);
      console.log(`calls per replica, of 30: ${shares.join(", ")}`);
      for (const share of shares) expect(share).toBeGreaterThanOrEqual(5);

      const [gone, ...left] = replicas as [Replica, Replica, Replica];
      await gone.stop();
      for (const r of replicas) r.served.calls = 0;
      let failures = 0;
      for (let i = 0; i < 30; i++) {
        try {
          expect((await client.listProducts({}, { timeoutMs: 2_000 })).nextPageToken).not.toBe(gone.name);
        } catch (e) {
          console.log(`a call failed: ${(e as Error).message}`);
          failures++;
        }
      }
      const sharesLeft = left.map((r) => r.served.calls);
      console.log(`after stopping one replica, 30 calls: ${failures} failed, the others served ${sharesLeft.join(", ")}`);
      // grpc-js sees the connection close (GOAWAY) and drops that subchannel from the picks
      // before the next call; at most the first call could race it.
      expect(failures).toBeLessThanOrEqual(1);
      expect(gone.served.calls).toBe(0);
      for (const share of sharesLeft) expect(share).toBeGreaterThanOrEqual(10);
    } finally {
      client.close();
    }
  }, 20_000);
});

describe("a replica that dies with calls in flight", () => {
  let replicas: Replica[] = [];
  beforeAll(async () => {
    replicas = [await startReplica("dying", { hang: true }), await startReplica("alive")];
  });
  afterAll(() => Promise.all(replicas.map((r) => r.stop())), hookTimeoutMs);

  test("a call the proto declares repeatable is answered by another replica; one it does not fails UNAVAILABLE", async () => {
    const [dying, alive] = replicas as [Replica, Replica];
    expect(repeatableMethods(CatalogService).map((m) => m.name)).toEqual(["ListProducts", "GetProduct", "BatchGetProducts", "ListCategories"]);
    const client = createClient(CatalogService, `${dying.address},${alive.address}`, { defaultTimeoutMs: 5_000 });
    try {
      await eventually(
        async () => {
          await client.createProduct({}, { timeoutMs: 300 }).catch(() => {});
          expect(dying.served.calls).toBeGreaterThan(0);
          expect(alive.served.calls).toBeGreaterThan(0);
          return true;
        },
        { what: "both replicas to take calls", timeoutMs: 4_000 },
      );
      const retriesBefore = await retriesOf("ListProducts");
      const heldBefore = dying.served.calls;
      const reads = Array.from({ length: 6 }, () => client.listProducts({}).then((r) => r.nextPageToken));
      const writes = Array.from({ length: 6 }, () =>
        client.createProduct({}).then(
          (r) => r.product?.id ?? "",
          (e: RpcError) => `failed ${e.codeName}`,
        ),
      );
      // Half of each went to the replica that hangs; then it dies (its connections cut).
      await eventually(() => dying.served.calls - heldBefore >= 6 || undefined, { what: "the dying replica to hold half the calls", timeoutMs: 2_000 });
      await dying.stop({ graceMs: 0 });
      const answered = await Promise.all(reads);
      const written = await Promise.all(writes);
      console.log(`reads after the crash: ${answered.join(", ")}; writes: ${written.join(", ")}`);
      expect(answered).toEqual(Array(6).fill("alive"));
      expect(written.filter((w) => w === "alive").length).toBeGreaterThan(0);
      expect(written.filter((w) => w !== "alive")).toEqual(Array(written.filter((w) => w !== "alive").length).fill("failed UNAVAILABLE"));
      expect(written.filter((w) => w !== "alive").length).toBeGreaterThan(0);
      expect((await retriesOf("ListProducts")) - retriesBefore).toBeGreaterThanOrEqual(3);
    } finally {
      client.close();
    }
  }, 20_000);
});

describe("a replica that answers UNAVAILABLE", () => {
  const replicas: Replica[] = [];
  afterAll(() => Promise.all(replicas.map((r) => r.stop())), hookTimeoutMs);

  test("is passed over for another replica, unless it says that every replica shares the failure (pushback -1)", async () => {
    const busy = await startReplica("busy", { fail: () => new RpcError(status.UNAVAILABLE, "this replica is overloaded") });
    const sharedOutage = await startReplica("shared", { fail: () => new RpcError(status.UNAVAILABLE, "Postgres is unavailable", { doNotRetry: true }) });
    const alive = await startReplica("alive");
    replicas.push(busy, sharedOutage, alive);
    const first = createClient(CatalogService, `${busy.address},${alive.address}`);
    const second = createClient(CatalogService, `${sharedOutage.address},${alive.address}`);
    // Until each channel is connected to both (the first calls go to whichever connected first).
    const warm = async (client: typeof first, replica: Replica) => {
      await eventually(
        async () => {
          await client.listProducts({}).catch(() => {});
          return replica.served.calls > 0 || undefined;
        },
        { what: `${replica.name} to take a call`, timeoutMs: 4_000 },
      );
      replica.served.calls = 0;
    };
    try {
      await warm(first, busy);
      // One at a time, so that each repeat is the next pick of round_robin: the other replica.
      const viaBusy: string[] = [];
      for (let i = 0; i < 8; i++) viaBusy.push((await first.listProducts({})).nextPageToken);
      expect(viaBusy).toEqual(Array(8).fill("alive"));
      expect(busy.served.calls).toBeGreaterThan(0);
      await warm(second, sharedOutage);
      const viaShared: string[] = [];
      for (let i = 0; i < 8; i++)
        viaShared.push(
          await second.listProducts({}).then(
            (r) => r.nextPageToken,
            (e: RpcError) => `${e.codeName} ${e.message}`,
          ),
        );
      expect(sharedOutage.served.calls).toBeGreaterThan(0);
      // Each call the shared-outage replica took fails at once, never repeated on the other.
      expect(viaShared.filter((v) => v !== "alive")).toEqual(Array(sharedOutage.served.calls).fill("UNAVAILABLE Postgres is unavailable"));
    } finally {
      first.close();
      second.close();
    }
  }, 20_000);
});

/** grpc_client_retries_total of one CatalogService method in this process. */
async function retriesOf(method: string): Promise<number> {
  const { values } = await grpcClientRetries.get();
  return values.find((v) => v.labels.grpc_method === method)?.value ?? 0;
}

describe("a client of a host name", () => {
  let replica: Replica;
  beforeAll(async () => {
    replica = await startReplica("local");
  });
  afterAll(() => replica?.stop(), hookTimeoutMs);

  test("localhost:port is resolved by DNS and its calls are served", async () => {
    const client = createClient(CatalogService, `localhost:${replica.port}`);
    try {
      for (let i = 0; i < 5; i++) expect((await client.listProducts({})).nextPageToken).toBe("local");
      expect(replica.served.calls).toBe(5);
    } finally {
      client.close();
    }
  });
});
