/**
 * Attacks on the chassis's gRPC server by a client that needs no token, and the limits that
 * answer them (issue 9): oversized and undecodable messages (CPU), and calls and connections
 * held open without sending anything (memory, streams). The server is a real GrpcServer on a
 * local port serving CatalogService with stub handlers; the CPU attack also runs against a real
 * catalog process, to measure what it costs that process and whether its health check stays
 * responsive. The attacker speaks grpc-js with raw bytes, or raw HTTP/2 (node:http2).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import http2 from "node:http2";
import { create, toBinary } from "@bufbuild/protobuf";
import { Client, credentials, Metadata, type ServiceError, status } from "@grpc/grpc-js";
import { methodPath } from "@bazaar/platform/grpc/definition";
import { GrpcServer, type GrpcServerOptions, servedService } from "@bazaar/platform/grpc/server";
import { configureLogging } from "@bazaar/platform/log";
import { eventually } from "@bazaar/testkit/eventually";
import { type LaunchedProcess, launchProcess } from "@bazaar/testkit/fixtures";
import { CatalogService, ListProductsRequestSchema } from "@bazaar/proto/bazaar/catalog/v1/catalog_pb";
import { Health } from "@bazaar/proto/grpc/health/v1/health_pb";
import { ServerReflectionRequestSchema } from "@bazaar/proto/grpc/reflection/v1/reflection_pb";

/** bunfig's test timeout does not cover hooks (they stop at 5 s); starting and stopping a process may take longer. */
const hookTimeoutMs = 60_000;
/** The size of the black-box test's message. */
const attackBytes = 3_900_000;

/** `bytes` bytes of unknown fields: field 15, varint 0, over and over (two bytes a field). */
function unknownFields(bytes: number): Buffer {
  const out = Buffer.alloc(bytes);
  for (let i = 0; i + 1 < bytes; i += 2) out[i] = 0x78;
  return out;
}
/** Bytes that are not protobuf: a tag with wire type 7, which does not exist. */
const garbage = Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f, 0x01, 0x02]);

/** The outcome of one call made with raw request bytes. */
interface RawOutcome {
  code: status;
  details: string;
  ms: number;
}

/** Calls `path` with `bytes` as the request, undecoded, with a deadline; resolves with the status. */
function rawCall(client: Client, path: string, bytes: Buffer, { timeoutMs = 15_000, metadata = new Metadata() } = {}): Promise<RawOutcome> {
  const started = performance.now();
  return new Promise((resolve) => {
    client.makeUnaryRequest(
      path,
      (b: Buffer) => b,
      (b: Buffer) => b,
      bytes,
      metadata,
      { deadline: Date.now() + timeoutMs },
      (err: ServiceError | null) => resolve({ code: err ? err.code : status.OK, details: err?.details ?? "", ms: performance.now() - started }),
    );
  });
}

/** CatalogService with handlers that count their calls and answer empty. */
function countingCatalog() {
  const calls = { listProducts: 0, createProduct: 0 };
  const service = servedService(
    CatalogService,
    {
      listProducts: () => {
        calls.listProducts++;
        return {};
      },
      getProduct: () => ({}),
      batchGetProducts: () => ({}),
      listCategories: () => ({}),
      createProduct: () => {
        calls.createProduct++;
        return {};
      },
      updateProduct: () => ({}),
    },
    { listProducts: "public", getProduct: "public", batchGetProducts: "public", listCategories: "public", createProduct: "admin", updateProduct: "admin" },
  );
  return { service, calls };
}

/** A served counting catalog with the given server options, and a grpc-js client of it. */
async function startCatalog(options: GrpcServerOptions = {}) {
  const { service, calls } = countingCatalog();
  const server = new GrpcServer([service], options);
  const port = await server.start(0, "127.0.0.1");
  const address = `127.0.0.1:${port}`;
  const client = new Client(address, credentials.createInsecure(), { "grpc.max_send_message_length": -1 });
  return {
    calls,
    address,
    client,
    stop: async () => {
      client.close();
      await server.shutdown({ drainMs: 0, graceMs: 2_000 });
    },
  };
}

const listProducts = methodPath(CatalogService.method.listProducts);
const createProduct = methodPath(CatalogService.method.createProduct);
const healthCheck = methodPath(Health.method.check);

beforeAll(() => configureLogging("grpc-limits-test", "error"));

describe("oversized and undecodable messages", () => {
  let catalog: Awaited<ReturnType<typeof startCatalog>>;
  beforeAll(async () => {
    catalog = await startCatalog();
  });
  afterAll(() => catalog?.stop(), hookTimeoutMs);

  test("a 3.9 MB message of unknown fields to a public RPC is refused RESOURCE_EXHAUSTED and never decoded nor handled", async () => {
    const outcome = await rawCall(catalog.client, listProducts, unknownFields(attackBytes));
    expect(outcome.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(outcome.details).toContain("larger than");
    expect(catalog.calls.listProducts).toBe(0);
  });

  test("a message just under the 64 KiB limit is still served", async () => {
    const request = Buffer.from(toBinary(ListProductsRequestSchema, create(ListProductsRequestSchema, { query: "x".repeat(60 * 1024) })));
    const handled = catalog.calls.listProducts;
    const outcome = await rawCall(catalog.client, listProducts, request);
    expect(outcome.code).toBe(status.OK);
    expect(catalog.calls.listProducts).toBe(handled + 1);
  });

  test("garbage bytes to a public RPC are INVALID_ARGUMENT naming the request type, not INTERNAL", async () => {
    const outcome = await rawCall(catalog.client, listProducts, garbage);
    expect(outcome.code).toBe(status.INVALID_ARGUMENT);
    expect(outcome.details).toContain("not a valid bazaar.catalog.v1.ListProductsRequest");
  });

  test("garbage bytes without a token to an admin RPC are refused UNAUTHENTICATED before the body is decoded", async () => {
    const outcome = await rawCall(catalog.client, createProduct, garbage);
    expect(outcome.code).toBe(status.UNAUTHENTICATED);
    expect(catalog.calls.createProduct).toBe(0);
  });

  test("garbage bytes to the health check are INVALID_ARGUMENT naming the request type, not INTERNAL", async () => {
    const outcome = await rawCall(catalog.client, healthCheck, garbage);
    expect(outcome.code).toBe(status.INVALID_ARGUMENT);
    expect(outcome.details).toContain("not a valid grpc.health.v1.HealthCheckRequest");
  });
});

/** A raw HTTP/2 connection to a gRPC server, for streams that a gRPC client would never leave half-open. */
function connectH2(address: string): Promise<http2.ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://${address}`);
    const timer = setTimeout(() => reject(new Error(`no HTTP/2 connection to ${address} within 5 s`)), 5_000);
    session.once("remoteSettings", () => {
      clearTimeout(timer);
      resolve(session);
    });
    session.once("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

/** Opens a gRPC call's stream (headers only, no deadline, no DATA) and reports how it ended. */
function halfOpenCall(session: http2.ClientHttp2Session, path: string) {
  const stream = session.request({ ":method": "POST", ":path": path, "content-type": "application/grpc", te: "trailers" }, { endStream: false });
  const ended = new Promise<{ grpcStatus: string | undefined; how: string }>((resolve) => {
    let grpcStatus: string | undefined;
    stream.on("response", (headers) => {
      grpcStatus ??= headers["grpc-status"] as string | undefined;
    });
    stream.on("trailers", (trailers) => {
      grpcStatus = trailers["grpc-status"] as string | undefined;
    });
    stream.on("data", () => {});
    // The server's side of the stream ends with its trailers (a trailers-only response) or a reset.
    stream.on("end", () => resolve({ grpcStatus, how: "ended by the server" }));
    stream.on("close", () => resolve({ grpcStatus, how: `closed (rst code ${stream.rstCode})` }));
    stream.on("error", () => {}); // close follows
  });
  return { stream, ended };
}

/** `promise`, or "still open" if it has not settled after `ms`. */
function within<T>(promise: Promise<T>, ms: number): Promise<T | "still open"> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const open = new Promise<"still open">((resolve) => {
    timer = setTimeout(() => resolve("still open"), ms);
  });
  return Promise.race([promise, open]).finally(() => clearTimeout(timer));
}

describe("half-open calls and idle connections", () => {
  let catalog: Awaited<ReturnType<typeof startCatalog>>;
  const requestArrivalMs = 300;
  beforeAll(async () => {
    catalog = await startCatalog({ requestArrivalMs, maxConnectionIdleMs: 500 });
  });
  afterAll(() => catalog?.stop(), hookTimeoutMs);

  /** Opens a ListProducts call whose client does only `send`, and expects the server to end it DEADLINE_EXCEEDED, unhandled, at the arrival timeout. */
  async function expectEndedAtArrivalTimeout(send: (stream: http2.ClientHttp2Stream) => void = () => {}): Promise<void> {
    const session = await connectH2(catalog.address);
    try {
      const { stream, ended } = halfOpenCall(session, listProducts);
      send(stream);
      expect(await within(ended, requestArrivalMs + 3_000)).toEqual({ grpcStatus: String(status.DEADLINE_EXCEEDED), how: expect.any(String) });
      expect(catalog.calls.listProducts).toBe(0);
    } finally {
      session.destroy();
    }
  }

  test("a call without a deadline that never sends its request message is ended DEADLINE_EXCEEDED at the arrival timeout", async () => {
    await expectEndedAtArrivalTimeout();
  });

  test("a request message trickled a byte at a time is ended at the arrival timeout", async () => {
    await expectEndedAtArrivalTimeout((stream) => {
      // A 5-byte gRPC frame header announcing 1,000 bytes, then one byte every 50 ms.
      stream.write(Buffer.from([0, 0, 0, 0x03, 0xe8]));
      const trickle = setInterval(() => stream.write(Buffer.from([0x78])), 50);
      stream.on("close", () => clearInterval(trickle));
    });
  });

  test("a call that sends its request message but never ends its stream is ended at the arrival timeout", async () => {
    // A complete, empty ListProductsRequest, and no END_STREAM.
    await expectEndedAtArrivalTimeout((stream) => stream.write(Buffer.from([0, 0, 0, 0, 0])));
  });

  test("1,000 half-open calls on one connection are all ended at the arrival timeout", async () => {
    const session = await connectH2(catalog.address);
    try {
      const calls = Array.from({ length: 1_000 }, () => halfOpenCall(session, listProducts));
      const outcomes = await within(Promise.all(calls.map((c) => c.ended)), requestArrivalMs * 4 + 5_000);
      expect(outcomes).not.toBe("still open");
      if (outcomes === "still open") return;
      // 256 at a time (the concurrent-stream limit): each timed-out stream is reset, which frees its slot for the next.
      expect(outcomes.filter((o) => o.grpcStatus === String(status.DEADLINE_EXCEEDED)).length).toBe(1_000);
    } finally {
      session.destroy();
    }
  }, 20_000);

  test("a connection that opens no call is closed by the server with GOAWAY after the idle timeout", async () => {
    const session = await connectH2(catalog.address);
    try {
      const goaway = new Promise<string>((resolve) => {
        session.once("goaway", () => resolve("goaway"));
        session.once("close", () => resolve("close"));
      });
      expect(await within(goaway, 3_000)).not.toBe("still open");
    } finally {
      session.destroy();
    }
  });

  test("the server tells every connection it takes at most 256 calls at once (SETTINGS_MAX_CONCURRENT_STREAMS)", async () => {
    const session = await connectH2(catalog.address);
    try {
      expect(session.remoteSettings.maxConcurrentStreams).toBe(256);
    } finally {
      session.destroy();
    }
  });
});

describe("streaming calls held open", () => {
  let catalog: Awaited<ReturnType<typeof startCatalog>>;
  beforeAll(async () => {
    catalog = await startCatalog({ maxConnectionAgeMs: 300, maxConnectionAgeGraceMs: 300 });
  });
  afterAll(() => catalog?.stop(), hookTimeoutMs);

  test("a reflection stream kept open after its first request is cut when its connection reaches its maximum age", async () => {
    const session = await connectH2(catalog.address);
    try {
      const goaway = new Promise<void>((resolve) => session.once("goaway", () => resolve()));
      const { stream, ended } = halfOpenCall(session, "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo");
      const request = Buffer.from(
        toBinary(ServerReflectionRequestSchema, create(ServerReflectionRequestSchema, { messageRequest: { case: "listServices", value: "" } })),
      );
      stream.write(Buffer.concat([Buffer.from([0, 0, 0, 0, request.length]), request]));
      expect(await within(goaway, 3_000)).not.toBe("still open");
      expect(await within(ended, 3_000)).not.toBe("still open");
    } finally {
      session.destroy();
    }
  });
});

/** CPU seconds (user + system) the process `pid` has used, from /proc/<pid>/stat. */
function cpuSeconds(pid: number): number {
  // Fields after the command (which is in parentheses and may hold spaces): utime is the 12th, stime the 13th.
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100; // USER_HZ is 100 on Linux
}

/** One health check of `health-prober.ts`. */
interface Probe {
  at: number;
  ms: number;
  code: status;
}

/** Runs `health-prober.ts` against `address`, collecting its checks; resolves once the first check is in. */
async function startProber(address: string): Promise<{ probes: Probe[]; stop: () => void }> {
  const proc = Bun.spawn(["bun", `${import.meta.dir}/health-prober.ts`, address], { stdout: "pipe", stderr: "inherit" });
  const probes: Probe[] = [];
  void (async () => {
    const reader = proc.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let buffered = "";
    for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) {
      buffered += chunk.value;
      const lines = buffered.split("\n");
      buffered = lines.pop() ?? "";
      for (const line of lines) if (line) probes.push(JSON.parse(line) as Probe);
    }
  })();
  const stop = () => proc.kill("SIGKILL");
  try {
    await eventually(() => probes.length > 0, { what: "the prober's first health check", timeoutMs: 15_000 });
  } catch (err) {
    stop();
    throw err;
  }
  return { probes, stop };
}

describe("the CPU attack against a real catalog process", () => {
  let catalog: LaunchedProcess | undefined;
  let client: Client | undefined;
  beforeAll(async () => {
    catalog = await launchProcess("catalog");
    client = new Client(catalog.grpcAddress, credentials.createInsecure(), { "grpc.max_send_message_length": -1 });
  }, hookTimeoutMs);
  afterAll(async () => {
    client?.close();
    await catalog?.cleanup();
  }, hookTimeoutMs);

  test("16 concurrent 3.9 MB messages of unknown fields cost the service little CPU and its health check stays responsive", async () => {
    if (!catalog || !client) throw new Error("the catalog process did not start");
    const attacker = client;
    const pid = catalog.child.proc.pid;
    const prober = await startProber(catalog.grpcAddress);
    try {
      await rawCall(attacker, listProducts, Buffer.from([])); // the attacker's connection is up
      const cpuBefore = cpuSeconds(pid);
      const from = Date.now();
      const outcomes = await Promise.all(Array.from({ length: 16 }, () => rawCall(attacker, listProducts, unknownFields(attackBytes), { timeoutMs: 30_000 })));
      const cpu = cpuSeconds(pid) - cpuBefore;
      // The checks that overlapped the attack, and the one after it (which waited out any stall).
      const until = Date.now();
      await eventually(() => prober.probes.some((p) => p.at > until), { what: "a health check after the attack", timeoutMs: 30_000 });
      const during = prober.probes.filter((p) => p.at + p.ms >= from && p.at <= until + 100);
      const worstHealthMs = Math.max(...during.map((p) => p.ms));
      console.info(
        `CPU attack: 16 x ${attackBytes} B in ${until - from} ms; codes ${[...new Set(outcomes.map((o) => status[o.code]))].join(",")}; ` +
          `catalog CPU ${cpu.toFixed(2)} s; health checks during it ${during.length}, worst ${worstHealthMs} ms`,
      );
      expect(outcomes.map((o) => o.code)).toEqual(Array(16).fill(status.RESOURCE_EXHAUSTED));
      expect(during.every((p) => p.code === status.OK)).toBe(true);
      expect(cpu).toBeLessThan(0.5);
      expect(worstHealthMs).toBeLessThan(250);
    } finally {
      prober.stop();
    }
  }, 60_000);
});
