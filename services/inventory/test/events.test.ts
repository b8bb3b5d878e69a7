import type { ServiceAccess } from "@bazaar/platform/grpc/server";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { create, type MessageInitShape, toBinary } from "@bufbuild/protobuf";
import { eq, isNull } from "drizzle-orm";
import { status } from "@grpc/grpc-js";
import { RpcError } from "@bazaar/platform/errors";
import { createClient } from "@bazaar/platform/grpc/client";
import { configureLogging } from "@bazaar/platform/log";
import { Broker, on } from "@bazaar/platform/messaging/broker";
import { events } from "@bazaar/platform/messaging/events";
import { OutboxRelay } from "@bazaar/platform/messaging/outbox";
import { registry } from "@bazaar/platform/metrics";
import { eventually } from "@bazaar/testkit/eventually";
import { freePort, startTestGrpcServer } from "@bazaar/testkit/fixtures";
import { type ScopedVhost, TestScope } from "@bazaar/testkit/test-scope";
import { CatalogService } from "@bazaar/proto/bazaar/catalog/v1/catalog_pb";
import type { ProductUpdatedSchema, StockChanged } from "@bazaar/proto/bazaar/events/v1/events_pb";
import { CatalogBackfill } from "../src/catalog-backfill.ts";
import * as schema from "../src/db/schema.ts";
import { demoQuantity } from "../src/demo-stock.ts";
import { type InventoryDatabase, InventoryStore } from "../src/inventory-store.ts";
import { consumeProductAnnouncements, productsQueue } from "../src/product-events.ts";

// The inventory's messaging against a real RabbitMQ vhost and Postgres database of this run's
// own: the product consumer and its inbox, and the relay publishing StockChanged.
const scope = new TestScope();
let vhost: ScopedVhost;
let db: InventoryDatabase;
let broker: Broker;
let relay: OutboxRelay;
let store: InventoryStore;
const published: StockChanged[] = [];

beforeAll(async () => {
  configureLogging("inventory", "warn");
  vhost = await scope.vhost();
  db = await scope.database("inventory", schema);
  broker = scope.add(await Broker.connect(vhost.url, { service: "inventory" }), (b) => b.close());
  relay = scope.add(new OutboxRelay(db.db, broker, { pollMs: 200 }).start(), (r) => r.stop());
  store = new InventoryStore(db, { reservationTtlSeconds: 900, demoStock: true }, relay);
  await consumeProductAnnouncements(broker, db, store, relay);
  // Stands in for the services that follow stock levels.
  await broker.consume({ queue: "test.stock-watcher", handlers: [on(events.stockChanged, async (e) => void published.push(e))] });
}, 60_000);

afterAll(() => scope.cleanup(), 60_000);

/** Messages the products queue has finished with, by outcome. */
async function consumed(outcome: string): Promise<number> {
  const values = (await registry.getSingleMetric("bazaar_messages_consumed_total")?.get())?.values ?? [];
  return values.filter((v) => v.labels.queue === productsQueue && v.labels.outcome === outcome).reduce((n, v) => n + v.value, 0);
}

function announce(messageId: string, init: MessageInitShape<typeof ProductUpdatedSchema>) {
  const payload = toBinary(events.productUpdated.schema, create(events.productUpdated.schema, init));
  return broker.publish([{ id: messageId, routingKey: events.productUpdated.routingKey, payload, headers: {} }]);
}

const stockRows = (productId: string) => db.db.select().from(schema.stock).where(eq(schema.stock.productId, productId));

describe("products announced by the catalog", () => {
  test("a new product gets one stock row with its demo quantity, even when the message comes twice", async () => {
    const productId = crypto.randomUUID();
    const messageId = crypto.randomUUID();
    const [processed, duplicates] = [await consumed("processed"), await consumed("duplicate")];
    await announce(messageId, { productId, name: "Test Kettle", created: true });
    await announce(messageId, { productId, name: "Test Kettle", created: true });
    await eventually(async () => (await consumed("processed")) - processed + (await consumed("duplicate")) - duplicates >= 2, {
      what: "both deliveries handled",
    });
    expect((await consumed("duplicate")) - duplicates).toBe(1);
    const rows = await stockRows(productId);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ onHand: demoQuantity(productId), reserved: 0 });
    // Its StockChanged went out through the outbox and the relay, once.
    await eventually(async () => published.some((e) => e.productId === productId), { what: "the StockChanged of the new row" });
    await Bun.sleep(100);
    expect(published.filter((e) => e.productId === productId).map((e) => e.onHand)).toEqual([demoQuantity(productId)]);
  });

  test("another announcement of a product that has stock leaves its stock alone", async () => {
    const productId = crypto.randomUUID();
    await db.db.insert(schema.stock).values({ productId, onHand: 77, reserved: 7 });
    const processed = await consumed("processed");
    await announce(crypto.randomUUID(), { productId, name: "Renamed", created: true });
    await announce(crypto.randomUUID(), { productId, name: "Renamed again", created: false });
    await eventually(async () => (await consumed("processed")) - processed >= 2, { what: "both announcements handled" });
    expect((await stockRows(productId))[0]).toMatchObject({ onHand: 77, reserved: 7 });
  });

  test("a change to a product the inventory never heard of creates no stock row", async () => {
    const productId = crypto.randomUUID();
    const processed = await consumed("processed");
    await announce(crypto.randomUUID(), { productId, name: "Changed", created: false });
    await eventually(async () => (await consumed("processed")) > processed, { what: "the change handled" });
    expect(await stockRows(productId)).toHaveLength(0);
  });

  test("an announcement whose product id is not a UUID goes to the dead-letter queue", async () => {
    const dead = await consumed("dead_lettered");
    await announce(crypto.randomUUID(), { productId: "not-a-uuid", name: "Broken", created: true });
    await eventually(async () => (await consumed("dead_lettered")) > dead, { what: "the message dead-lettered" });
  });
});

describe("StockChanged", () => {
  test("is published by the relay with the new levels, and its outbox row marked published", async () => {
    const productId = crypto.randomUUID();
    // A product inventory knows, with no units yet (only known products take stock).
    await db.db.insert(schema.stock).values({ productId });
    await store.adjust(productId, 9, "first delivery", "test-admin");
    await store.reserve(crypto.randomUUID(), [{ productId, quantity: 4 }]);
    const seen = await eventually(
      async () => {
        const mine = published.filter((e) => e.productId === productId);
        return mine.length >= 2 ? mine : undefined;
      },
      { what: "two StockChanged events" },
    );
    expect(seen.map((e) => [e.onHand, e.reserved, e.available]).sort()).toEqual(
      [
        [9, 0, 9],
        [9, 4, 5],
      ].sort(),
    );
    await eventually(
      async () => {
        const left = await db.db.select().from(schema.outbox).where(isNull(schema.outbox.publishedAt));
        return left.length === 0 ? true : undefined;
      },
      { what: "the outbox drained" },
    );
  });
});

describe("catalog backfill", () => {
  test("creates the stock rows the catalog has products for and the inventory has not, paging through them", async () => {
    const ids = Array.from({ length: 150 }, () => crypto.randomUUID());
    await db.db.insert(schema.stock).values({ productId: ids[3]!, onHand: 1234 });
    // A stand-in catalog that only lists products, 100 a page at most.
    const listProducts = async (req: { pageSize: number; pageToken: string }) => {
      const start = Number(req.pageToken || 0);
      const end = start + Math.min(req.pageSize, 100);
      return { products: ids.slice(start, end).map((id) => ({ id })), nextPageToken: end < ids.length ? String(end) : "", totalSize: ids.length };
    };
    const unused = async () => {
      throw new Error("not served by this stand-in");
    };
    const impl = { listProducts, getProduct: unused, batchGetProducts: unused, listCategories: unused, createProduct: unused, updateProduct: unused };
    // The stand-in answers ListProducts only, to anyone: who may call the rest is not what this tests.
    const access = Object.fromEntries(Object.keys(impl).map((rpc) => [rpc, "public"])) as ServiceAccess<typeof CatalogService>;
    const fake = await startTestGrpcServer({ service: CatalogService, impl, access });
    try {
      const backfill = new CatalogBackfill(fake.client, db, store, relay);
      expect(await backfill.runOnce()).toBe(149);
      expect(await backfill.runOnce()).toBe(0);
      const levels = await store.levels(ids);
      expect(levels[3]?.onHand).toBe(1234);
      expect(levels.filter((_, i) => i !== 3).every((l, i) => l.onHand === demoQuantity(ids[i >= 3 ? i + 1 : i]!))).toBe(true);
    } finally {
      await fake.stop();
    }
  });

  test("stocking a product while the catalog cannot be asked is UNAVAILABLE and creates no row", async () => {
    const catalog = createClient(CatalogService, `127.0.0.1:${freePort()}`, { defaultTimeoutMs: 500 });
    const productId = crypto.randomUUID();
    const err = await new CatalogBackfill(catalog, db, store, relay).ensureProduct(productId).catch((e: unknown) => e as RpcError);
    catalog.close();
    expect(err).toBeInstanceOf(RpcError);
    expect((err as RpcError).code).toBe(status.UNAVAILABLE);
    expect((err as RpcError).message).toStartWith(`cannot check product ${productId} with the catalog right now; try again`);
    expect(await stockRows(productId)).toEqual([]);
  });

  test("keeps retrying an unreachable catalog in the background and stops when told", async () => {
    const catalog = createClient(CatalogService, `127.0.0.1:${freePort()}`, { defaultTimeoutMs: 500 });
    const backfill = new CatalogBackfill(catalog, db, store, relay).start();
    await Bun.sleep(200);
    const started = Date.now();
    await backfill.stop();
    expect(Date.now() - started).toBeLessThan(1_000);
    catalog.close();
  });
});
