import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Hono } from "hono";
import { freePort, launchProcess, type LaunchedProcess } from "@bazaar/testkit/fixtures";
import { createMetricsApp } from "@bazaar/platform/http";
import { createApp } from "../src/app.ts";
import { type CatalogClient, createCatalogClient } from "../src/upstreams/catalog.ts";

// The BFF app called with app.request(), its catalog a real catalog process with its own
// database and Redis prefix.
let catalogProcess: LaunchedProcess;
let catalog: CatalogClient;
let app: Hono;

beforeAll(async () => {
  catalogProcess = await launchProcess("catalog");
  catalog = createCatalogClient(catalogProcess.grpcAddress, 2_000);
  app = createApp({ upstreams: { catalog } });
}, 60_000);

afterAll(async () => {
  catalog?.close();
  await catalogProcess?.cleanup();
}, 60_000);

interface ProductJson {
  id: string;
  name: string;
  categoryId: string;
  price: { amountMinor: number; currency: string; display: string };
}

describe("GET /api/products", () => {
  test("lists a page of products shaped for the UI, with display prices", async () => {
    const res = await app.request("/api/products?pageSize=5");
    expect(res.status).toBe(200);
    const body = (await res.json()) as { products: ProductJson[]; nextPageToken: string | null; total: number };
    expect(body.products).toHaveLength(5);
    expect(body.total).toBe(72);
    expect(body.nextPageToken).toBeString();
    const p = body.products[0]!;
    expect(p.price.display).toBe(`$${(p.price.amountMinor / 100).toFixed(2)}`);
    expect(p.price.currency).toBe("USD");
  });

  test("searches and filters by category, and follows the page token", async () => {
    const res = await app.request("/api/products?q=bamboo&category=kitchen&pageSize=1");
    const first = (await res.json()) as { products: ProductJson[]; nextPageToken: string; total: number };
    expect(first.total).toBeGreaterThan(1);
    expect(first.products[0]?.categoryId).toBe("kitchen");
    const next = await app.request(`/api/products?q=bamboo&category=kitchen&pageSize=1&pageToken=${first.nextPageToken}`);
    const second = (await next.json()) as { products: ProductJson[] };
    expect(second.products[0]?.id).not.toBe(first.products[0]?.id);
  });

  test("invalid query parameters are a 400 naming each bad field", async () => {
    const res = await app.request(`/api/products?pageSize=abc&category=Not%20A%20Slug&q=${"x".repeat(201)}`);
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: { code: string; fields: Record<string, string> } };
    expect(body.error.code).toBe("invalid_request");
    expect(Object.keys(body.error.fields).sort()).toEqual(["category", "pageSize", "q"]);
    expect(body.error.fields.pageSize).toBe("must be a number");
    const tooMany = await app.request("/api/products?pageSize=500");
    expect(((await tooMany.json()) as { error: { fields: Record<string, string> } }).error.fields.pageSize).toBe("must be at most 100");
  });

  test("a token the catalog rejects is a 400 with the catalog's explanation", async () => {
    const res = await app.request("/api/products?pageToken=garbage");
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: { message: string } };
    expect(body.error.message).toContain("page_token");
  });
});

describe("GET /api/products/:id", () => {
  test("returns one product", async () => {
    const list = (await (await app.request("/api/products?pageSize=1")).json()) as { products: ProductJson[] };
    const id = list.products[0]!.id;
    const res = await app.request(`/api/products/${id}`);
    expect(res.status).toBe(200);
    expect(((await res.json()) as { product: ProductJson }).product).toEqual(list.products[0]!);
  });

  test("an unknown id is a 404 and a malformed one a 400", async () => {
    const missing = await app.request("/api/products/00000000-0000-4000-8000-000000000000");
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { error: { code: string } }).error.code).toBe("not_found");
    const bad = await app.request("/api/products/not-a-uuid");
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { fields: Record<string, string> } }).error.fields.id).toBe("must be a product id");
  });
});

describe("categories, unknown routes and health", () => {
  test("lists categories with counts", async () => {
    const body = (await (await app.request("/api/categories")).json()) as { categories: { id: string; productCount: number }[] };
    expect(body.categories).toHaveLength(6);
    expect(body.categories.reduce((n, c) => n + c.productCount, 0)).toBe(72);
  });

  test("an unknown API route is a JSON 404", async () => {
    const res = await app.request("/api/nothing-here");
    expect(res.status).toBe(404);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("not_found");
  });

  test("/healthz answers, and requests are counted by route template on the metrics app", async () => {
    expect((await app.request("/healthz")).status).toBe(200);
    const metrics = await (await createMetricsApp().request("/metrics")).text();
    expect(metrics).toMatch(/http_server_requests_total\{method="GET",route="\/api\/products\/:id",status="404"[^}]*\} \d+/);
    expect(metrics).toContain('grpc_client_handled_total{grpc_service="bazaar.catalog.v1.CatalogService",grpc_method="GetProduct",grpc_code="NOT_FOUND"');
  });
});

describe("when the catalog is down or slow", () => {
  test("a catalog that is not running makes a 503 with a message for people, not a 500", async () => {
    const down = createCatalogClient(`127.0.0.1:${freePort()}`, 1_000);
    try {
      const res = await createApp({ upstreams: { catalog: down } }).request("/api/products");
      expect(res.status).toBe(503);
      const body = (await res.json()) as { error: { code: string; message: string } };
      expect(body.error.code).toBe("unavailable");
      expect(body.error.message).toContain("try again");
    } finally {
      down.close();
    }
  });

  test("a catalog that does not answer before the deadline makes a 503", async () => {
    // A TCP server that accepts connections and never speaks HTTP/2: the call hits its deadline.
    const silent = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    const slow = createCatalogClient(`127.0.0.1:${silent.port}`, 300);
    try {
      const started = performance.now();
      const res = await createApp({ upstreams: { catalog: slow } }).request("/api/categories");
      expect(res.status).toBe(503);
      expect(performance.now() - started).toBeLessThan(5_000);
    } finally {
      slow.close();
      silent.stop(true);
    }
  });
});
