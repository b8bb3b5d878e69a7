/**
 * The chassis's gRPC health (grpc.health.v1.Health Check and Watch), served by a real catalog
 * process as the subject (any service would do), in steady state and through graceful shutdown: on SIGTERM health turns NOT_SERVING (Watch streams hear
 * it, Check and /healthz say so) while calls keep being served for SHUTDOWN_DRAIN_MS; then the
 * Watch streams end and the process exits 0.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { create } from "@bufbuild/protobuf";
import { Client, credentials, Metadata, status } from "@grpc/grpc-js";
import type { RpcError } from "@bazaar/platform/errors";
import { createClient, type GrpcClient } from "@bazaar/platform/grpc/client";
import { methodDefinition } from "@bazaar/platform/grpc/definition";
import { eventually } from "@bazaar/testkit/eventually";
import { type LaunchedProcess, launchProcess, rpcError } from "@bazaar/testkit/fixtures";
import { CatalogService } from "@bazaar/proto/bazaar/catalog/v1/catalog_pb";
import {
  Health,
  HealthCheckRequestSchema,
  type HealthCheckResponse,
  HealthCheckResponse_ServingStatus as ServingStatus,
} from "@bazaar/proto/grpc/health/v1/health_pb";

const catalogService = CatalogService.typeName;
/** bunfig's test timeout does not cover hooks (they stop at 5 s); starting and stopping a process may take longer. */
const hookTimeoutMs = 60_000;

/** A Watch stream, recording every status it hears and how (and when) it ended. */
class WatchStream {
  readonly statuses: { status: ServingStatus; at: number }[] = [];
  ended: { code: status; details: string; at: number } | undefined;
  private readonly call;

  constructor(client: Client, service: string) {
    const def = methodDefinition(Health.method.watch);
    this.call = client.makeServerStreamRequest(
      def.path,
      def.requestSerialize,
      def.responseDeserialize,
      create(HealthCheckRequestSchema, { service }),
      new Metadata(),
      { deadline: Date.now() + 30_000 },
    );
    this.call.on("data", (m: HealthCheckResponse) => this.statuses.push({ status: m.status, at: performance.now() }));
    this.call.on("status", (s) => {
      this.ended ??= { code: s.code, details: s.details, at: performance.now() };
    });
    this.call.on("error", () => {}); // the status event records it
  }

  /** Waits for the n-th status (1-based) and returns it. */
  async nth(n: number, timeoutMs = 5_000): Promise<ServingStatus> {
    await eventually(() => this.statuses.length >= n || this.ended !== undefined, { what: `Watch status #${n}`, timeoutMs, intervalMs: 5 });
    const s = this.statuses[n - 1];
    if (!s) throw new Error(`the Watch stream ended (${JSON.stringify(this.ended)}) before status #${n}`);
    return s.status;
  }

  cancel(): void {
    this.call.cancel();
  }
}

describe("health of a serving catalog", () => {
  let server: LaunchedProcess;
  let client: Client;
  let health: GrpcClient<typeof Health>;

  beforeAll(async () => {
    server = await launchProcess("catalog");
    client = new Client(server.grpcAddress, credentials.createInsecure());
    health = createClient(Health, server.grpcAddress);
  }, hookTimeoutMs);

  afterAll(async () => {
    health?.close();
    client?.close();
    await server?.cleanup();
  }, hookTimeoutMs);

  test('Check("") — the server as a whole — is SERVING', async () => {
    expect((await health.check({ service: "" })).status).toBe(ServingStatus.SERVING);
  });

  test(`Check("${catalogService}") is SERVING`, async () => {
    expect((await health.check({ service: catalogService })).status).toBe(ServingStatus.SERVING);
  });

  test("Check of a service the server does not serve fails with NOT_FOUND", async () => {
    expect((await rpcError(health.check({ service: "no.such.Service" }))).code).toBe(status.NOT_FOUND);
  });

  test('Watch("") streams SERVING first and stays open', async () => {
    const watch = new WatchStream(client, "");
    try {
      expect(await watch.nth(1)).toBe(ServingStatus.SERVING);
      await Bun.sleep(100);
      expect(watch.ended).toBeUndefined();
      expect(watch.statuses).toHaveLength(1);
    } finally {
      watch.cancel();
    }
  });

  test("Watch of an unknown service streams SERVICE_UNKNOWN (not an error), as the health protocol says", async () => {
    const watch = new WatchStream(client, "no.such.Service");
    try {
      expect(await watch.nth(1)).toBe(ServingStatus.SERVICE_UNKNOWN);
      expect(watch.ended).toBeUndefined();
    } finally {
      watch.cancel();
    }
  });

  test("/healthz and /readyz answer 200 SERVING with each dependency up; /livez 200", async () => {
    for (const path of ["/healthz", "/readyz"]) {
      const res = await fetch(`${server.httpUrl}${path}`);
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({
        status: "SERVING",
        dependencies: { postgres: { up: true, required: true }, redis: { up: true, required: false } },
      });
    }
    expect((await fetch(`${server.httpUrl}/livez`)).status).toBe(200);
  });
});

describe("health through graceful shutdown (SIGTERM, SHUTDOWN_DRAIN_MS=1500)", () => {
  const drainMs = 1500;
  let server: LaunchedProcess | undefined;
  let launchError: Error | undefined;
  const clients: { close(): void }[] = [];

  type CallOutcome = { ok: boolean; products?: number; error?: string; at: number };
  /** What each step of the scenario observed (or the error it ended with); the tests assert on these. */
  const seen: {
    watch?: WatchStream;
    firstWatchStatus?: ServingStatus;
    sigtermAt?: number;
    notServingAt?: number;
    check?: { overall: string; catalog: string; at: number; exitCodeThen: number | null };
    healthz?: { status: number; body: unknown; at: number; exitCodeThen: number | null };
    callAfterSigterm?: CallOutcome;
    callMidDrain?: CallOutcome & { issuedAt: number };
    exit?: { code: number | null; at: number };
    watchEnded?: { code: status; details: string; at: number };
  } = {};
  const errors: Partial<Record<keyof typeof seen, string>> = {};

  /** Runs one step of the scenario, recording its result under `key` or the error it threw. */
  async function step<K extends keyof typeof seen>(key: K, run: () => Promise<(typeof seen)[K]>): Promise<void> {
    try {
      seen[key] = await run();
    } catch (err) {
      errors[key] = (err as Error).message;
    }
  }

  beforeAll(async () => {
    try {
      server = await launchProcess("catalog", { SHUTDOWN_DRAIN_MS: String(drainMs) });
    } catch (err) {
      launchError = err as Error;
      return;
    }
    const { child, grpcAddress, httpUrl } = server;
    const raw = new Client(grpcAddress, credentials.createInsecure());
    const health = createClient(Health, grpcAddress);
    const catalog = createClient(CatalogService, grpcAddress, { defaultTimeoutMs: 10_000 });
    clients.push(raw, health, catalog);
    const listFive = (): Promise<CallOutcome> =>
      catalog.listProducts({ pageSize: 5 }).then(
        (r) => ({ ok: true, products: r.products.length, at: performance.now() }),
        (err: Error) => ({ ok: false, error: `${(err as RpcError).codeName ?? ""} ${err.message}`, at: performance.now() }),
      );

    // Connections are up before the signal, as a load balancer's would be.
    await catalog.listProducts({ pageSize: 1 }).catch(() => {});
    const watch = new WatchStream(raw, "");
    seen.watch = watch;
    await step("firstWatchStatus", () => watch.nth(1));

    const exited = child.proc.exited.then((code) => ({ code, at: performance.now() }));
    const sigtermAt = performance.now();
    seen.sigtermAt = sigtermAt;
    child.proc.kill("SIGTERM");
    const afterSigterm = listFive();

    await step("notServingAt", async () => {
      await watch.nth(2, drainMs);
      return watch.statuses[1]!.at;
    });
    await step("check", async () => {
      const [overall, catalogStatus] = await Promise.all([health.check({ service: "" }), health.check({ service: catalogService })]);
      return {
        overall: ServingStatus[overall.status]!,
        catalog: ServingStatus[catalogStatus.status]!,
        at: performance.now(),
        exitCodeThen: child.proc.exitCode,
      };
    });
    await step("healthz", async () => {
      const res = await fetch(`${httpUrl}/healthz`);
      return { status: res.status, body: await res.json(), at: performance.now(), exitCodeThen: child.proc.exitCode };
    });
    // Well inside the drain window: the server must still take new calls.
    await Bun.sleep(Math.max(0, sigtermAt + drainMs / 2 - performance.now()));
    const issuedAt = performance.now();
    const midDrain = listFive();

    await step("callAfterSigterm", () => afterSigterm);
    await step("callMidDrain", async () => ({ ...(await midDrain), issuedAt }));
    await step("exit", () =>
      Promise.race([
        exited,
        Bun.sleep(15_000).then(() => {
          throw new Error("the process did not exit within 15 s of SIGTERM");
        }),
      ]),
    );
    await step("watchEnded", async () => {
      await eventually(() => watch.ended !== undefined, { what: "the Watch stream to end", timeoutMs: 2_000, intervalMs: 5 });
      return watch.ended;
    });
  }, hookTimeoutMs);

  afterAll(async () => {
    for (const c of clients) c.close();
    await server?.cleanup();
  }, hookTimeoutMs);

  /** What the named steps observed; fails with the step's error (and the catalog's output) if one failed. */
  function observed<K extends keyof typeof seen>(...keys: K[]): Required<Pick<typeof seen, K>> & typeof seen {
    const output = `\n--- catalog output ---\n${server?.child.output().slice(-3000) ?? ""}`;
    if (launchError) throw new Error(`the catalog did not start: ${launchError.message}`);
    for (const key of keys) {
      if (errors[key]) throw new Error(`${key}: ${errors[key]}${output}`);
      if (seen[key] === undefined) throw new Error(`${key} was not observed${output}`);
    }
    return seen as Required<Pick<typeof seen, K>> & typeof seen;
  }

  test('Watch("") streams SERVING first', () => {
    expect(ServingStatus[observed("firstWatchStatus").firstWatchStatus]).toBe("SERVING");
  });

  test("after SIGTERM the Watch stream receives NOT_SERVING at once, before the process exits", () => {
    const s = observed("watch", "sigtermAt", "notServingAt", "exit");
    expect(s.watch.statuses.map((x) => ServingStatus[x.status])).toEqual(["SERVING", "NOT_SERVING"]);
    expect(s.notServingAt).toBeGreaterThan(s.sigtermAt);
    expect(s.notServingAt).toBeLessThan(s.exit.at);
    // It is told at once, not at the end of the drain.
    expect(s.notServingAt - s.sigtermAt).toBeLessThan(drainMs);
  });

  test("a Check made during the drain window answers NOT_SERVING, for the server and for CatalogService", () => {
    const s = observed("check", "sigtermAt");
    expect(s.check.overall).toBe("NOT_SERVING");
    expect(s.check.catalog).toBe("NOT_SERVING");
    expect(s.check.exitCodeThen).toBeNull();
    expect(s.check.at - s.sigtermAt).toBeLessThan(drainMs);
  });

  test("/healthz answers 503 NOT_SERVING during the drain", () => {
    const s = observed("healthz", "sigtermAt");
    expect(s.healthz.status).toBe(503);
    expect(s.healthz.body).toMatchObject({ status: "NOT_SERVING" });
    expect(s.healthz.exitCodeThen).toBeNull();
    expect(s.healthz.at - s.sigtermAt).toBeLessThan(drainMs);
  });

  test("a ListProducts call issued right after SIGTERM completes OK", () => {
    const s = observed("callAfterSigterm", "exit");
    expect(s.callAfterSigterm).toEqual({ ok: true, products: 5, at: expect.any(Number) });
    expect(s.callAfterSigterm.at).toBeLessThan(s.exit.at);
  });

  test("a ListProducts call issued in the middle of the drain is still served OK", () => {
    const s = observed("callMidDrain", "sigtermAt");
    expect(s.callMidDrain.issuedAt - s.sigtermAt).toBeLessThan(drainMs);
    expect(s.callMidDrain).toEqual({ ok: true, products: 5, at: expect.any(Number), issuedAt: expect.any(Number) });
  });

  test("the server ends the Watch stream cleanly (status OK) once the drain is over", () => {
    const s = observed("watchEnded", "sigtermAt");
    expect({ code: status[s.watchEnded.code], details: s.watchEnded.details }).toEqual({ code: "OK", details: expect.any(String) });
    expect(s.watchEnded.at - s.sigtermAt).toBeGreaterThanOrEqual(drainMs - 100);
  });

  test("the process waits out the drain, then exits with code 0", () => {
    const s = observed("exit", "sigtermAt");
    expect(s.exit.code).toBe(0);
    expect(s.exit.at - s.sigtermAt).toBeGreaterThanOrEqual(drainMs - 100);
    expect(server?.child.output()).toContain('"msg":"stopped"');
  });
});
