import { afterAll, beforeAll, expect, test } from "bun:test";
import { configureLogging } from "@bazaar/platform/log";
import { ServiceHost } from "@bazaar/platform/service";
import { createApp } from "../src/app.ts";

// The BFF's HTTP port is the shop's, behind the gateway: its metrics (routes, upstream errors,
// open streams) are for Prometheus, on a port of their own. With the web UI mounted, whose
// catch-all would otherwise answer any path with the shop's page.
const host = new ServiceHost("bff", { LOG_LEVEL: "error", SHUTDOWN_DRAIN_MS: 0, HTTP_PORT: 0, METRICS_PORT: 0 });
let ports: { httpPort: number; metricsPort?: number };

beforeAll(async () => {
  configureLogging("bff-metrics-port-test", "error");
  host.useHttpApp(
    createApp({ upstreams: {}, isHealthy: host.isServing, web: { indexHtml: "<!doctype html><title>Bazaar</title>", assets: new Map(), modules: [] } }),
  );
  ports = await host.listen();
});

afterAll(() => host.stop());

test("the BFF's public port does not serve /metrics; its metrics port does", async () => {
  expect((await fetch(`http://127.0.0.1:${ports.httpPort}/healthz`)).status).toBe(200);
  expect((await fetch(`http://127.0.0.1:${ports.httpPort}/metrics`)).status).toBe(404);
  const scrape = await fetch(`http://127.0.0.1:${ports.metricsPort}/metrics`);
  expect(scrape.status).toBe(200);
  expect(await scrape.text()).toContain('http_server_requests_total{method="GET",route="/healthz",status="200"');
});
