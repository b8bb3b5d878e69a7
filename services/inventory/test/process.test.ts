import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createClient, type GrpcClient } from "@bazaar/platform/grpc/client";
import { eventually } from "@bazaar/testkit/eventually";
import { bearer, type LaunchedProcess } from "@bazaar/testkit/fixtures";
import type { TestIssuer } from "@bazaar/testkit/test-issuer";
import { TestScope } from "@bazaar/testkit/test-scope";
import { CatalogService } from "@bazaar/proto/bazaar/catalog/v1/catalog_pb";
import { InventoryService, ReservationStatus } from "@bazaar/proto/bazaar/inventory/v1/inventory_pb";
import { demoQuantity } from "../src/demo-stock.ts";

// The real processes: a seeding catalog and an inventory on one vhost of this run's own. The
// catalog seeds and publishes before the inventory's queue exists, as on a fresh platform.
const scope = new TestScope();
let issuer: TestIssuer;
let catalogProcess: LaunchedProcess;
let inventoryProcess: LaunchedProcess;
let catalog: GrpcClient<typeof CatalogService>;
let inventory: GrpcClient<typeof InventoryService>;

beforeAll(async () => {
  issuer = await scope.issuer();
  const vhost = await scope.vhost();
  const auth = { JWKS_URL: issuer.jwksUrl, JWT_ISSUER: issuer.issuer, JWT_AUDIENCE: issuer.audience, AMQP_URL: vhost.url, LOG_LEVEL: "warn" };
  catalogProcess = await scope.launch("catalog", auth);
  catalog = scope.add(createClient(CatalogService, catalogProcess.grpcAddress), (c) => c.close());
  inventoryProcess = await scope.launch("inventory", {
    ...auth,
    CATALOG_ADDR: catalogProcess.grpcAddress,
    LOG_LEVEL: "info",
    RESERVATION_TTL_SECONDS: "1",
    RESERVATION_SWEEP_MS: "100",
  });
  inventory = scope.add(createClient(InventoryService, inventoryProcess.grpcAddress), (c) => c.close());
}, 60_000);

afterAll(() => scope.cleanup(), 60_000);

describe("the inventory process", () => {
  test("stocks every product of the demo catalog with its demo quantity", async () => {
    const { products } = await catalog.listProducts({ pageSize: 100 });
    expect(products.length).toBe(72);
    const ids = products.map((p) => p.id);
    const levels = await eventually(
      async () => {
        const { levels } = await inventory.getStock({ productIds: ids });
        return levels.every((l) => l.onHand > 0) ? levels : undefined;
      },
      { what: "every product stocked" },
    );
    expect(levels.map((l) => l.onHand)).toEqual(ids.map(demoQuantity));
    // The demo has a few products down to their last units.
    expect(levels.filter((l) => l.available <= 2).length).toBeGreaterThan(0);
  });

  test("stocks a product the catalog creates while it runs, from the catalog's event", async () => {
    const admin = bearer(await issuer.token({ sub: crypto.randomUUID(), roles: ["admin"] }));
    const { product } = await catalog.createProduct(
      {
        product: {
          sku: "TST-0901",
          slug: "tst-0901",
          name: "Inventory Test Lamp",
          description: "Made by a test.",
          categoryId: "kitchen",
          price: { currencyCode: "USD", amountMinor: 1500n },
        },
      },
      admin,
    );
    const level = await eventually(
      async () => {
        const { levels } = await inventory.getStock({ productIds: [product!.id] });
        return levels[0]!.onHand > 0 ? levels[0] : undefined;
      },
      { what: "the new product stocked" },
    );
    expect(level.onHand).toBe(demoQuantity(product!.id));
  });

  test("gives back reservations that outlive RESERVATION_TTL_SECONDS, swept every RESERVATION_SWEEP_MS", async () => {
    const service = bearer(await issuer.token({ sub: "service:orders", roles: ["service"] }));
    const { products } = await catalog.listProducts({ pageSize: 1 });
    const productId = products[0]!.id;
    const before = (await inventory.getStock({ productIds: [productId] })).levels[0]!;
    const orderId = crypto.randomUUID();
    const { reservation } = await inventory.reserveStock({ orderId, items: [{ productId, quantity: 1 }] }, service);
    expect(reservation?.status).toBe(ReservationStatus.RESERVED);
    expect((await inventory.getStock({ productIds: [productId] })).levels[0]!.reserved).toBe(before.reserved + 1);
    await eventually(
      async () => {
        const { levels } = await inventory.getStock({ productIds: [productId] });
        return levels[0]!.reserved === before.reserved ? true : undefined;
      },
      { what: "the reservation expired", timeoutMs: 5_000 },
    );
    const again = await inventory.releaseReservation({ orderId }, service);
    expect(again.reservation?.status).toBe(ReservationStatus.EXPIRED);
  });

  test("stops cleanly on SIGTERM", async () => {
    expect(await inventoryProcess.child.stop("SIGTERM")).toBe(0);
    const output = inventoryProcess.child.output();
    expect(output).toContain("checked the catalog for products without stock");
    expect(output).toContain('"msg":"stopped"');
    expect(output).not.toContain("failed");
  });
});
