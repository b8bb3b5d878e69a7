import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { parse } from "yaml";
import { metricsPortOf, serviceCatalog, type ServiceEntry } from "@bazaar/platform/service-catalog";
import { body, cards, overHttp, TestBrowser } from "../bff/test/support/browser.ts";
import { freePort } from "@bazaar/testkit/fixtures";
import { ComposeProject, composeCommand, type DockerEngine, ensureDockerEngine, run } from "./support/compose.ts";
import { eventually } from "@bazaar/testkit/eventually";

// compose.yaml and the Dockerfile agree with the service catalog (static checks), and the whole
// stack runs for real in Docker on this machine: built from local stand-in images, brought up
// until every container is healthy, shopped through the published port, and the orders
// container stopped and started during a stream of orders.

const root = new URL("..", import.meta.url).pathname;
const catalog = serviceCatalog as readonly ServiceEntry[];
// biome-ignore lint/suspicious/noExplicitAny: compose.yaml parsed as an untyped document whose shape is what these tests check.
const composeFile = parse(await Bun.file(`${root}compose.yaml`).text(), { merge: true }) as { services: Record<string, any>; volumes: Record<string, unknown> };
const composeServices = composeFile.services;

describe("compose.yaml", () => {
  test("runs every catalog process from the one image, its command the process's name, on the catalog's ports", () => {
    for (const entry of catalog) {
      const s = composeServices[entry.name];
      expect(s, `compose.yaml has no service ${entry.name}`).toBeDefined();
      // biome-ignore lint/suspicious/noTemplateCurlyInString: Compose interpolation, written as it stands in compose.yaml.
      expect(s.image).toBe("${BAZAAR_IMAGE:-bazaar:dev}");
      expect(s.command).toEqual([entry.name]);
      expect(s.environment.HTTP_PORT).toBe(String(entry.httpPort));
      expect(s.environment.METRICS_PORT).toBe(entry.metricsPort === undefined ? undefined : String(entry.metricsPort));
      // Processes bind loopback by default; in a container, peers must reach them.
      expect(s.environment.BIND_HOST).toBe("0.0.0.0");
      if (entry.grpcPort !== undefined) expect(s.environment.GRPC_PORT).toBe(String(entry.grpcPort));
      if (entry.database) expect(s.environment.DATABASE_URL).toBe(`postgres://postgres@postgres:5432/${entry.database}`);
      else expect(s.environment.DATABASE_URL).toBeUndefined();
    }
  });

  test("gives every process the address of every service by name and catalog port", () => {
    for (const entry of catalog) {
      const env = composeServices[entry.name].environment;
      for (const peer of catalog) if (peer.grpcPort !== undefined) expect(env[`${peer.name.toUpperCase()}_ADDR`]).toBe(`${peer.name}:${peer.grpcPort}`);
      expect(env.JWKS_URL).toBe(`http://identity:${catalog.find((s) => s.name === "identity")!.httpPort}/.well-known/jwks.json`);
    }
  });

  test("starts each process only once everything it needs is healthy", () => {
    for (const entry of catalog) {
      const needs = new Set<string>([
        ...(entry.calls ?? []),
        ...(entry.database ? ["postgres"] : []),
        ...(entry.redis ? ["redis"] : []),
        ...(entry.messaging ? ["rabbitmq"] : []),
      ]);
      const dependsOn = composeServices[entry.name].depends_on ?? {};
      expect(Object.keys(dependsOn).sort(), `${entry.name}'s depends_on`).toEqual([...needs].sort());
      for (const [dep, how] of Object.entries(dependsOn)) expect((how as { condition: string }).condition, `${entry.name} → ${dep}`).toBe("service_healthy");
    }
    const gatewayNeeds = Object.keys(composeServices.gateway.depends_on).sort();
    expect(gatewayNeeds).toEqual(catalog.map((s) => s.name).sort());
  });

  test("has a healthcheck, a restart policy, a memory limit and dropped capabilities on every container", () => {
    for (const [name, s] of Object.entries(composeServices)) {
      expect(s.healthcheck?.test?.length, `${name} has no healthcheck`).toBeGreaterThan(0);
      expect(s.restart, `${name}'s restart policy`).toBe("unless-stopped");
      expect(s.mem_limit, `${name} has no memory limit`).toMatch(/^\d+m$/);
      expect(s.cap_drop, `${name} keeps its capabilities`).toEqual(["ALL"]);
      expect(s.security_opt).toContain("no-new-privileges:true");
    }
    for (const entry of catalog) expect(composeServices[entry.name].read_only, `${entry.name} has a writable root`).toBe(true);
  });

  test("publishes only the gateway and the operators' UIs; pins every image and lets a variable replace it", () => {
    const published = Object.entries(composeServices)
      .filter(([, s]) => s.ports)
      .map(([name]) => name)
      .sort();
    expect(published).toEqual(["gateway", "grafana", "jaeger", "prometheus"]);
    // biome-ignore lint/suspicious/noTemplateCurlyInString: Compose interpolation, written as it stands in compose.yaml.
    expect(composeServices.gateway.ports).toEqual(["${GATEWAY_HTTP_PORT:-8080}:8080", "${GATEWAY_HTTPS_PORT:-8443}:8443"]);
    for (const [name, s] of Object.entries(composeServices)) {
      expect(s.image, `${name}'s image`).toMatch(/^\$\{[A-Z_]+_IMAGE:-[\w./-]+:[\w.-]+\}$/);
      expect(s.image, `${name} is not pinned`).not.toContain(":latest");
    }
  });

  test("Prometheus scrapes every catalog process at its name and metrics port (its HTTP port unless the catalog gives one)", async () => {
    const prom = parse(await Bun.file(`${root}deploy/prometheus/prometheus.compose.yml`).text()) as {
      scrape_configs: { job_name: string; static_configs: { targets: string[]; labels: { service: string } }[] }[];
    };
    const targets = prom.scrape_configs.find((j) => j.job_name === "bazaar")!.static_configs.map((c) => ({ target: c.targets[0], service: c.labels.service }));
    expect(targets).toEqual(catalog.map((s) => ({ target: `${s.name}:${metricsPortOf(s)}`, service: s.name })));
    if (Bun.which("promtool")) await run(["promtool", "check", "config", "--syntax-only", `${root}deploy/prometheus/prometheus.compose.yml`]);
  });

  test("the Dockerfile installs the packages of every workspace before copying the sources", async () => {
    const dockerfile = await Bun.file(`${root}Dockerfile`).text();
    const manifests = [...dockerfile.matchAll(/^COPY (\S+\/package\.json) /gm)].map((m) => m[1]).sort();
    const workspaces = [
      "proto/package.json",
      "platform/package.json",
      "testkit/package.json",
      ...catalog.map((s) => `${s.entry.split("/src/")[0]}/package.json`),
    ].sort();
    expect(manifests).toEqual(workspaces);
    expect(dockerfile).toContain("bun install --frozen-lockfile --production");
    // The dependency patches the install applies (package.json's patchedDependencies) are there before it.
    const { patchedDependencies = {} } = (await Bun.file(`${root}package.json`).json()) as { patchedDependencies?: Record<string, string> };
    for (const patch of Object.values(patchedDependencies)) expect(patch.startsWith("patches/")).toBe(true);
    if (Object.keys(patchedDependencies).length) {
      expect(dockerfile.indexOf("COPY patches patches")).toBeGreaterThan(-1);
      expect(dockerfile.indexOf("COPY patches patches")).toBeLessThan(dockerfile.indexOf("bun install --frozen-lockfile"));
    }
    expect(dockerfile).toMatch(/^USER bun$/m);
  });

  test("is valid for the compose tool on this machine", async () => {
    const command = await composeCommand().catch(() => undefined);
    if (!command) throw new Error("no compose tool is installed: scripts/setup.sh installs docker-compose");
    await run([...command, "-f", `${root}compose.yaml`, "config", "--quiet"], { timeoutMs: 30_000 });
  });
});

// ---------------------------------------------------------------------------------------------
// The stack, for real.

const docker = await ensureDockerEngine();
if (!docker.engine) console.warn(`SKIPPED the compose run: ${docker.reason}`);

describe.skipIf(!docker.engine)("the whole stack in Docker (local stand-in images, no gateway)", () => {
  const engine = docker.engine as DockerEngine;
  const appServices = catalog.map((s) => s.name);
  const infrastructure = ["postgres", "redis", "rabbitmq", "prometheus"];
  const bffPort = freePort();
  const image = "bazaar:compose-test";
  let project: ComposeProject;
  let shopper: TestBrowser;
  const report: Record<string, unknown> = {};

  beforeAll(async () => {
    let started = performance.now();
    await run(["bash", `${root}scripts/containers/build-local-images.sh`], { timeoutMs: 900_000 });
    report.localImagesSeconds = Math.round((performance.now() - started) / 100) / 10;
    started = performance.now();
    await run(["docker", "build", "--quiet", "--build-arg", "BUN_IMAGE=bazaar-local/bun:1.4.5", "--tag", image, root], { timeoutMs: 600_000 });
    report.imageBuildSeconds = Math.round((performance.now() - started) / 100) / 10;
    report.imageMB = Math.round(Number((await run(["docker", "image", "inspect", "--format", "{{.Size}}", image])).stdout) / 1e6);
    project = new ComposeProject(
      await composeCommand(),
      `bazaar_test_${process.pid}`,
      [`${root}compose.yaml`, `${root}scripts/containers/compose.local.yaml`],
      {
        ...process.env,
        COMPOSE_PROFILES: "",
        BAZAAR_IMAGE: image,
        BAZAAR_LOCAL_BFF_PORT: String(bffPort),
        PROMETHEUS_PORT: `127.0.0.1:${freePort()}`,
        OTEL_EXPORTER_OTLP_ENDPOINT: "",
      },
      `${root}scripts/containers/local-images.env`,
    );
    await project.down();
    started = performance.now();
    await project.up(400_000);
    await project.waitHealthy([...infrastructure, ...appServices], 300_000);
    report.upToHealthySeconds = Math.round((performance.now() - started) / 100) / 10;
    await Bun.sleep(5_000); // settle before reading idle memory
    report.idleMemory = await project.memory();
    shopper = new TestBrowser(overHttp(`http://127.0.0.1:${bffPort}`));
  }, 1_500_000);

  afterAll(async () => {
    console.log(`compose run: ${JSON.stringify(report, null, 2)}`);
    if (project) {
      const down = await project.down();
      if (down.code !== 0) console.warn(`docker compose down failed: ${down.stderr}`);
    }
    await engine.stop();
  }, 240_000);

  /** Products with at least `min` units in stock, once inventory has made stock rows for them. */
  async function stockedProducts(min: number, count: number): Promise<string[]> {
    return eventually(
      async () => {
        const page = await body<{ products: { id: string }[] }>(await shopper.get("/api/products?pageSize=100"));
        const stocked: string[] = [];
        for (const p of page.products) {
          const res = await shopper.get(`/api/products/${p.id}`);
          if (res.status === 200 && (await body<{ stock: { available: number } }>(res)).stock.available >= min) stocked.push(p.id);
          if (stocked.length === count) return stocked;
        }
        return undefined;
      },
      { what: `${count} products with ${min}+ units in stock`, timeoutMs: 60_000 },
    );
  }

  async function order(b: TestBrowser, id: string): Promise<{ status: string; cancelReason: string | null }> {
    const res = await b.get(`/api/orders/${id}`);
    if (res.status !== 200) throw new Error(`GET /api/orders/${id} answered ${res.status}`);
    return (await body<{ order: { status: string; cancelReason: string | null } }>(res)).order;
  }

  test("a shopper signs up, fills the cart, pays through the published port and sees CONFIRMED and a notification", async () => {
    await shopper.signUp("Compose Shopper");
    const [productId] = await stockedProducts(2, 1);
    const added = await shopper.post("/api/cart/items", { productId, quantity: 2 });
    expect(added.status).toBe(200);
    const paid = await shopper.checkout(cards.good);
    expect(paid.status, await paid.clone().text()).toBeLessThan(300);
    const { order: placed } = await body<{ order: { id: string } }>(paid);
    const confirmed = await eventually(
      async () => {
        const o = await order(shopper, placed.id);
        return o.status === "CONFIRMED" ? o : undefined;
      },
      { what: "the order CONFIRMED", timeoutMs: 30_000 },
    );
    expect(confirmed.cancelReason).toBeNull();
    const notices = await eventually(
      async () => {
        const page = await body<{ notifications: { title?: string; body?: string }[] }>(await shopper.get("/api/notifications"));
        return page.notifications.length ? page.notifications : undefined;
      },
      { what: "a notification of the order", timeoutMs: 30_000 },
    );
    expect(notices.length).toBeGreaterThan(0);
  }, 120_000);

  test("orders stopped and started during a stream of orders: every accepted order reaches a final state", async () => {
    const buyers = await Promise.all(
      [1, 2, 3].map(async (i) => {
        const b = new TestBrowser(overHttp(`http://127.0.0.1:${bffPort}`));
        await b.signUp(`Compose Buyer ${i}`);
        return b;
      }),
    );
    const products = await stockedProducts(20, 6);
    const accepted: { buyer: TestBrowser; id: string }[] = [];
    const refused: number[] = [];
    let streaming = true;
    const stream = buyers.map(async (b, i) => {
      for (let n = 0; streaming; n++) {
        try {
          await b.post("/api/cart/items", { productId: products[(i + n) % products.length], quantity: 1 });
          const res = await b.checkout(cards.good);
          if (res.status < 300) {
            const { order: o } = await body<{ order: { id: string; status: string } }>(res);
            accepted.push({ buyer: b, id: o.id });
          } else {
            refused.push(res.status);
            await Bun.sleep(200);
          }
        } catch {
          refused.push(0);
          await Bun.sleep(200);
        }
      }
    });
    await eventually(async () => accepted.length >= 3, { what: "a few orders accepted before the stop", timeoutMs: 30_000 });
    const beforeStop = accepted.length;
    await project.compose(["stop", "orders"], 60_000);
    await Bun.sleep(3_000);
    await project.compose(["start", "orders"], 60_000);
    await project.waitHealthy(["orders"], 90_000);
    const afterRestart = accepted.length;
    await eventually(async () => accepted.length >= afterRestart + 3, { what: "orders accepted after the restart", timeoutMs: 30_000 });
    streaming = false;
    await Promise.all(stream);

    const finals = await Promise.all(
      accepted.map(({ buyer, id }) =>
        eventually(
          async () => {
            const o = await order(buyer, id);
            return o.status === "PENDING" ? undefined : o;
          },
          { what: `order ${id} final`, timeoutMs: 90_000 },
        ),
      ),
    );
    report.containerStop = {
      accepted: accepted.length,
      acceptedBeforeStop: beforeStop,
      acceptedAfterRestart: accepted.length - afterRestart,
      refusedDuringOutage: refused.length,
      refusedStatuses: [...new Set(refused)],
      confirmed: finals.filter((o) => o.status === "CONFIRMED").length,
      cancelled: finals.filter((o) => o.status === "CANCELLED").length,
      cancelReasons: [...new Set(finals.map((o) => o.cancelReason).filter(Boolean))],
    };
    expect(finals.every((o) => o.status === "CONFIRMED" || o.status === "CANCELLED")).toBe(true);
    expect(accepted.length).toBeGreaterThan(beforeStop);
    // A refusal while orders is down is an honest answer (503), never a server error.
    expect(refused.filter((s) => s === 500)).toEqual([]);
  }, 300_000);
});
