import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { eq } from "drizzle-orm";
import { status } from "@grpc/grpc-js";
import { connectRedis, CacheAside, type RedisConnection } from "@bazaar/platform/cache";
import type { GrpcClient } from "@bazaar/platform/grpc/client";
import { configureLogging } from "@bazaar/platform/log";
import { registry } from "@bazaar/platform/metrics";
import { type BearerAuth, rpcError, startTestGrpcServer, type TestGrpcServerWithIssuer, testEnv } from "@bazaar/testkit/fixtures";
import { TestScope } from "@bazaar/testkit/test-scope";
import { CatalogService } from "@bazaar/proto/bazaar/catalog/v1/catalog_pb";
import * as schema from "../src/db/schema.ts";
import { type CatalogDatabase, productCodec, ProductStore, toPrefixQuery } from "../src/products.ts";
import { catalogAccess, catalogHandlers } from "../src/rpc.ts";
import { seedCatalog } from "../src/seed.ts";
import { seedProducts } from "../src/seed-data.ts";

// The catalog's handlers behind a real gRPC server and client, on a fresh database and
// Redis prefix of this test run's own.
const scope = new TestScope();
const redisPrefix = scope.redisPrefix();
let db: CatalogDatabase;
let redis: RedisConnection;
let store: ProductStore;
let grpc: TestGrpcServerWithIssuer<typeof CatalogService>;
let client: GrpcClient<typeof CatalogService>;
let asAdmin: BearerAuth;
let asCustomer: BearerAuth;

beforeAll(async () => {
  configureLogging("catalog", "warn");
  db = await scope.database("catalog", schema);
  await seedCatalog(db);
  redis = scope.add(await connectRedis(testEnv.REDIS_URL, redisPrefix), (r) => r.close());
  store = new ProductStore(db, new CacheAside(redis, { name: "product", ttlSeconds: 60, codec: productCodec }));
  grpc = scope.add(await startTestGrpcServer({ service: CatalogService, impl: catalogHandlers(store), access: catalogAccess }), (g) => g.stop());
  ({ client } = grpc);
  asAdmin = await grpc.auth({ sub: crypto.randomUUID(), roles: ["customer", "admin"] });
  asCustomer = await grpc.auth({ sub: crypto.randomUUID(), roles: ["customer"] });
}, 60_000);

afterAll(() => scope.cleanup(), 60_000);

async function cacheCount(result: "hit" | "miss"): Promise<number> {
  const metric = (await registry.getSingleMetric("bazaar_cache_requests_total")?.get())?.values ?? [];
  return metric.filter((v) => v.labels.result === result).reduce((sum, v) => sum + v.value, 0);
}

describe("ListProducts", () => {
  test("pages through every product exactly once, in name order", async () => {
    const seen: string[] = [];
    const names: string[] = [];
    let token = "";
    let pages = 0;
    do {
      const page = await client.listProducts({ pageSize: 7, pageToken: token });
      expect(page.products.length).toBeLessThanOrEqual(7);
      expect(page.totalSize).toBe(seedProducts.length);
      seen.push(...page.products.map((p) => p.id));
      names.push(...page.products.map((p) => p.name));
      token = page.nextPageToken;
      pages++;
    } while (token && pages < 100);
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen.length).toBe(seedProducts.length);
    expect(pages).toBe(Math.ceil(seedProducts.length / 7));
    expect(names).toEqual([...names].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)));
  });

  test("a product added between pages is neither repeated nor makes another one skipped", async () => {
    const first = await client.listProducts({ pageSize: 10 });
    const [row] = await db.db
      .insert(schema.products)
      .values({
        sku: "TST-0001",
        slug: "aaa-test-kettle",
        name: "AAA Test Kettle",
        description: "A kettle added mid-listing.",
        categoryId: "kitchen",
        priceMinor: 1234,
      })
      .returning({ id: schema.products.id });
    try {
      const ids = first.products.map((p) => p.id);
      let token = first.nextPageToken;
      while (token) {
        const page = await client.listProducts({ pageSize: 10, pageToken: token });
        ids.push(...page.products.map((p) => p.id));
        token = page.nextPageToken;
      }
      expect(new Set(ids).size).toBe(ids.length);
      // Sorted before every page already served, so it is not on any later page; all others are.
      expect(ids.length).toBe(seedProducts.length);
    } finally {
      await db.db.delete(schema.products).where(eq(schema.products.id, row!.id));
    }
  });

  test("filters by category", async () => {
    const page = await client.listProducts({ categoryId: "audio", pageSize: 100 });
    const expected = seedProducts.filter((p) => p.categorySlug === "audio");
    expect(page.products.length).toBe(expected.length);
    expect(page.totalSize).toBe(expected.length);
    expect(page.products.every((p) => p.categoryId === "audio")).toBe(true);
    expect(page.nextPageToken).toBe("");
  });

  test("searches name and description by word prefix, every word required", async () => {
    const page = await client.listProducts({ query: "ceram", pageSize: 100 });
    expect(page.products.length).toBeGreaterThan(1);
    for (const p of page.products) expect(`${p.name} ${p.description}`.toLowerCase()).toContain("ceram");
    const narrower = await client.listProducts({ query: "ceramic pan", pageSize: 100 });
    expect(narrower.products.length).toBeGreaterThan(0);
    expect(narrower.products.length).toBeLessThan(page.products.length);
    for (const p of narrower.products) {
      const text = `${p.name} ${p.description}`.toLowerCase();
      expect(text).toContain("ceramic");
      expect(text).toContain("pan");
    }
    const none = await client.listProducts({ query: "zzzqqq" });
    expect(none.products).toEqual([]);
    expect(none.totalSize).toBe(0);
  });

  test("search and category combine, and page with the same filter", async () => {
    const all = await client.listProducts({ query: "bamboo", categoryId: "kitchen", pageSize: 100 });
    expect(all.products.length).toBeGreaterThan(1);
    const first = await client.listProducts({ query: "bamboo", categoryId: "kitchen", pageSize: 1 });
    const second = await client.listProducts({ query: "bamboo", categoryId: "kitchen", pageSize: 1, pageToken: first.nextPageToken });
    expect([first.products[0]?.id, second.products[0]?.id]).toEqual([all.products[0]?.id, all.products[1]?.id]);
  });

  test("search text with tsquery syntax is treated as words, not as syntax", async () => {
    const page = await client.listProducts({ query: "ceramic & | ! :* ( ' \\" });
    expect(page.products.length).toBeGreaterThan(0);
    const symbolsOnly = await client.listProducts({ query: "&|!():*" });
    expect(symbolsOnly.totalSize).toBe(seedProducts.length);
    expect(toPrefixQuery("Ceramic mu!g")).toBe("ceramic:* & mu:* & g:*");
  });

  test("rejects a negative or oversized page size with INVALID_ARGUMENT naming page_size", async () => {
    for (const pageSize of [-1, 101, 100000]) {
      const err = await rpcError(client.listProducts({ pageSize }));
      expect(err.code).toBe(status.INVALID_ARGUMENT);
      expect(err.message).toContain("page_size");
    }
  });

  test("rejects a forged, garbled or mismatched page token with INVALID_ARGUMENT", async () => {
    for (const pageToken of ["not a token!", "eyJ2IjoyfQ", Buffer.from("{}").toString("base64url"), "a".repeat(2000)]) {
      const err = await rpcError(client.listProducts({ pageToken }));
      expect(err.code).toBe(status.INVALID_ARGUMENT);
      expect(err.message).toContain("page_token");
    }
    const page = await client.listProducts({ pageSize: 2, categoryId: "audio" });
    const err = await rpcError(client.listProducts({ pageSize: 2, categoryId: "kitchen", pageToken: page.nextPageToken }));
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.message).toContain("different category or query");
  });

  test("rejects an overlong query and a malformed category id", async () => {
    expect((await rpcError(client.listProducts({ query: "x".repeat(201) }))).code).toBe(status.INVALID_ARGUMENT);
    expect((await rpcError(client.listProducts({ categoryId: "Not A Slug" }))).code).toBe(status.INVALID_ARGUMENT);
  });
});

describe("GetProduct and BatchGetProducts", () => {
  test("returns a product with its price in minor units", async () => {
    const seeded = seedProducts[0]!;
    const [row] = await db.db.select().from(schema.products).where(eq(schema.products.sku, seeded.sku));
    const { product } = await client.getProduct({ id: row!.id });
    expect(product?.name).toBe(seeded.name);
    expect(product?.price?.amountMinor).toBe(BigInt(seeded.priceMinor));
    expect(product?.price?.currencyCode).toBe("USD");
    expect(product?.imageUrl).toBe(seeded.imageUrl);
  });

  test("an unknown id is NOT_FOUND and a malformed one INVALID_ARGUMENT", async () => {
    const missing = await rpcError(client.getProduct({ id: "00000000-0000-4000-8000-000000000000" }));
    expect(missing.code).toBe(status.NOT_FOUND);
    expect(missing.message).toContain("00000000-0000-4000-8000-000000000000");
    const bad = await rpcError(client.getProduct({ id: "42; drop table products" }));
    expect(bad.code).toBe(status.INVALID_ARGUMENT);
    expect((await rpcError(client.getProduct({ id: "" }))).code).toBe(status.INVALID_ARGUMENT);
  });

  test("the second read of a product is a cache hit", async () => {
    const { products } = await client.listProducts({ pageSize: 1, query: "walnut" });
    const id = products[0]!.id;
    const [hits0, misses0] = [await cacheCount("hit"), await cacheCount("miss")];
    await client.getProduct({ id });
    expect(await cacheCount("miss")).toBe(misses0 + 1);
    expect(await redis.client.exists(`${redisPrefix}product:${id}`)).toBe(1);
    await client.getProduct({ id });
    expect(await cacheCount("hit")).toBe(hits0 + 1);
    expect(await cacheCount("miss")).toBe(misses0 + 1);
  });

  test("after an update the next read returns the new value, not the cached one", async () => {
    const { products } = await client.listProducts({ pageSize: 1, query: "kettle" });
    const id = products[0]!.id;
    await client.getProduct({ id });
    await client.getProduct({ id }); // cached now
    await store.update(id, { priceMinor: 4321, name: "Renamed Kettle" });
    const { product } = await client.getProduct({ id });
    expect(product?.price?.amountMinor).toBe(4321n);
    expect(product?.name).toBe("Renamed Kettle");
  });

  test("a batch answers in request order, once per id, listing the missing ones", async () => {
    const { products } = await client.listProducts({ pageSize: 3 });
    const [a, b, c] = products.map((p) => p.id);
    const ghost = "00000000-0000-4000-8000-00000000abcd";
    const res = await client.batchGetProducts({ ids: [c!, a!, ghost, c!, b!] });
    expect(res.products.map((p) => p.id)).toEqual([c!, a!, b!]);
    expect(res.missingIds).toEqual([ghost]);
  });

  test("a batch of none, of too many, or with a malformed id is INVALID_ARGUMENT", async () => {
    expect((await rpcError(client.batchGetProducts({ ids: [] }))).code).toBe(status.INVALID_ARGUMENT);
    const many = Array.from({ length: 101 }, () => crypto.randomUUID());
    expect((await rpcError(client.batchGetProducts({ ids: many }))).message).toContain("at most 100");
    const bad = await rpcError(client.batchGetProducts({ ids: [crypto.randomUUID(), "x"] }));
    expect(bad.code).toBe(status.INVALID_ARGUMENT);
    expect(bad.message).toContain("ids[1]");
  });
});

describe("ListCategories", () => {
  test("lists every category with its product count", async () => {
    const { categories } = await client.listCategories({});
    expect(categories.length).toBe(6);
    const total = categories.reduce((n, c) => n + c.productCount, 0);
    expect(total).toBe(seedProducts.length);
    expect(categories.map((c) => c.name)).toEqual([...categories.map((c) => c.name)].sort());
  });
});

describe("seeding", () => {
  test("seeding again leaves a catalog that has products alone", async () => {
    expect(await seedCatalog(db)).toEqual({ seeded: false, products: seedProducts.length });
  });
});

describe("text search", () => {
  test("is answered from the GIN index on the search document, not by scanning", async () => {
    // With 72 rows the planner would rightly prefer a scan; forbid it to see the index is usable.
    const plan = await db.sql.begin(async (tx) => {
      await tx`set local enable_seqscan = off`;
      return tx`explain select id from products where search_document @@ to_tsquery('english', 'wool:*')`;
    });
    expect(plan.map((r) => String(r["QUERY PLAN"])).join("\n")).toContain("products_search_document_idx");
  });
});

describe("CreateProduct and UpdateProduct (admin)", () => {
  const newProduct = (sku: string) => ({
    sku,
    slug: sku.toLowerCase(),
    name: `Test ${sku}`,
    description: "Made by a test.",
    categoryId: "kitchen",
    price: { currencyCode: "USD", amountMinor: 1999n },
    imageUrl: "/images/products/test.svg",
  });
  const outboxRows = () => db.db.select().from(schema.outbox);

  test("without a token is UNAUTHENTICATED, and a customer is PERMISSION_DENIED; nothing is written", async () => {
    const before = (await outboxRows()).length;
    expect((await rpcError(client.createProduct({ product: newProduct("TST-0100") }))).code).toBe(status.UNAUTHENTICATED);
    const denied = await rpcError(client.createProduct({ product: newProduct("TST-0100") }, asCustomer));
    expect(denied.code).toBe(status.PERMISSION_DENIED);
    expect(denied.message).toContain("admin");
    expect((await client.listProducts({ query: "TST-0100" })).totalSize).toBe(0);
    expect((await outboxRows()).length).toBe(before);
  });

  test("an admin creates a product, with its ProductUpdated event in the outbox", async () => {
    const { product } = await client.createProduct({ product: newProduct("TST-0101") }, asAdmin);
    expect(product?.id).toMatch(/^[0-9a-f-]{36}$/);
    expect((await client.getProduct({ id: product!.id })).product?.name).toBe("Test TST-0101");
    const rows = (await outboxRows()).filter((r) => r.routingKey === "product.updated.v1");
    const { fromBinary } = await import("@bufbuild/protobuf");
    const { ProductUpdatedSchema } = await import("@bazaar/proto/bazaar/events/v1/events_pb");
    const eventsForIt = rows.map((r) => fromBinary(ProductUpdatedSchema, r.payload)).filter((e) => e.productId === product!.id);
    expect(eventsForIt).toHaveLength(1);
    expect(eventsForIt[0]?.created).toBe(true);
  });

  test("ProductUpdated carries the whole product and its update_time, which grows with every change, even two in one millisecond", async () => {
    const { product } = await client.createProduct({ product: newProduct("TST-0106") }, asAdmin);
    const id = product!.id;
    const change = (amountMinor: bigint) =>
      client.updateProduct({ product: { id, price: { currencyCode: "USD", amountMinor } }, updateMask: { paths: ["price"] } }, asAdmin);
    await Promise.all([change(101n), change(102n), change(103n)]);
    const { fromBinary } = await import("@bufbuild/protobuf");
    const { timestampMs } = await import("@bufbuild/protobuf/wkt");
    const { ProductUpdatedSchema } = await import("@bazaar/proto/bazaar/events/v1/events_pb");
    const published = (await outboxRows())
      .filter((r) => r.routingKey === "product.updated.v1")
      .map((r) => fromBinary(ProductUpdatedSchema, r.payload))
      .filter((e) => e.productId === id);
    expect(published).toHaveLength(4);
    const times = published.map((e) => timestampMs(e.updateTime!));
    expect(new Set(times).size).toBe(4);
    // The newest event is the product as GetProduct has it now.
    const newest = published[times.indexOf(Math.max(...times))]!;
    const now = (await client.getProduct({ id })).product!;
    expect(timestampMs(now.updateTime!)).toBe(Math.max(...times));
    expect(newest).toMatchObject({
      sku: now.sku,
      slug: now.slug,
      name: now.name,
      description: now.description,
      categoryId: now.categoryId,
      imageUrl: now.imageUrl,
    });
    expect(newest.price?.amountMinor).toBe(now.price!.amountMinor);
  });

  test("a taken SKU is ALREADY_EXISTS and an unknown category INVALID_ARGUMENT", async () => {
    await client.createProduct({ product: newProduct("TST-0102") }, asAdmin);
    expect((await rpcError(client.createProduct({ product: newProduct("TST-0102") }, asAdmin))).code).toBe(status.ALREADY_EXISTS);
    const err = await rpcError(client.createProduct({ product: { ...newProduct("TST-0103"), categoryId: "no-such-category" } }, asAdmin));
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.message).toContain("category_id");
    const badPrice = await rpcError(
      client.createProduct({ product: { ...newProduct("TST-0104"), price: { currencyCode: "USD", amountMinor: -5n } } }, asAdmin),
    );
    expect(badPrice.message).toContain("amount_minor");
  });

  test("a protocol-relative image URL (//evil.example/x.png) is INVALID_ARGUMENT naming image_url; nothing is written", async () => {
    for (const [i, imageUrl] of ["//evil.example/x.png", "/\\evil.example/x.png"].entries()) {
      const sku = `TST-011${i}`;
      const err = await rpcError(client.createProduct({ product: { ...newProduct(sku), imageUrl } }, asAdmin));
      expect(err.code).toBe(status.INVALID_ARGUMENT);
      expect(err.violations.map((v) => v.field)).toEqual(["product.image_url"]);
      expect((await client.listProducts({ query: sku })).totalSize).toBe(0);
    }
  });

  test("an update changes only the masked fields, refreshes the cache and queues an event", async () => {
    const { product } = await client.createProduct({ product: newProduct("TST-0105") }, asAdmin);
    await client.getProduct({ id: product!.id }); // cached
    const { product: updated } = await client.updateProduct(
      { product: { id: product!.id, name: "ignored", price: { currencyCode: "USD", amountMinor: 2500n } }, updateMask: { paths: ["price"] } },
      asAdmin,
    );
    expect(updated?.name).toBe("Test TST-0105");
    expect(updated?.price?.amountMinor).toBe(2500n);
    expect((await client.getProduct({ id: product!.id })).product?.price?.amountMinor).toBe(2500n);
  });

  test("an update with no mask, an unknown field or an unknown product is refused", async () => {
    const { products } = await client.listProducts({ pageSize: 1 });
    const id = products[0]!.id;
    expect((await rpcError(client.updateProduct({ product: { id, name: "x" } }, asAdmin))).message).toContain("update_mask");
    expect((await rpcError(client.updateProduct({ product: { id, sku: "X" }, updateMask: { paths: ["sku"] } }, asAdmin))).message).toContain(
      "cannot change sku",
    );
    const missing = await rpcError(
      client.updateProduct({ product: { id: "00000000-0000-4000-8000-000000000000", name: "x" }, updateMask: { paths: ["name"] } }, asAdmin),
    );
    expect(missing.code).toBe(status.NOT_FOUND);
  });
});
