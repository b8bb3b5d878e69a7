import { Hono } from "hono";
import { z } from "zod";
import { imageUrlRule, isImageUrl } from "@bazaar/platform/validation";
import { type AppEnv, requireAdmin } from "../auth.ts";
import type { ProductPageModel } from "../product-page-model.ts";
import { adminOrderView, productView, stockView } from "../shape.ts";
import type { CatalogClient } from "../upstreams/catalog.ts";
import type { InventoryClient } from "../upstreams/inventory.ts";
import type { OrdersClient } from "../upstreams/orders.ts";
import { pageSizeQuery, valid } from "../validate.ts";

const ordersQuery = z.object({
  pageSize: pageSizeQuery(50),
  pageToken: z.string().max(1024, "is too long").optional().default(""),
});
const productParam = z.object({ id: z.uuid("must be a product id") });
const stockParam = z.object({ productId: z.uuid("must be a product id") });

const productPatch = z
  .object({
    name: z.string({ error: "must be text" }).trim().min(1, "must not be empty").max(120, "must be at most 120 characters").optional(),
    description: z.string({ error: "must be text" }).max(2000, "must be at most 2000 characters").optional(),
    priceMinor: z
      .number({ error: "must be a number" })
      .int("must be a whole number of cents")
      .min(0, "must not be negative")
      .max(100_000_000, "must be at most 100000000")
      .optional(),
    imageUrl: z.string({ error: "must be text" }).refine(isImageUrl, imageUrlRule).optional(),
  })
  .refine((p) => Object.values(p).some((v) => v !== undefined), {
    message: "change at least one of name, description, priceMinor, imageUrl",
    path: ["request"],
  });

const stockBody = z.object({
  delta: z
    .number({ error: "must be a number" })
    .int("must be a whole number")
    .min(-1_000_000, "must be at least -1000000")
    .max(1_000_000, "must be at most 1000000")
    .refine((d) => d !== 0, "must not be 0"),
  reason: z.string({ error: "is required" }).trim().min(1, "is required").max(200, "must be at most 200 characters"),
});

/** /api/admin: the staff's pages (admins only: 401 signed out, 403 for customers). */
export function adminRoutes(catalog: CatalogClient, inventory: InventoryClient, orders: OrdersClient, productPage: ProductPageModel) {
  return new Hono<AppEnv>()
    .use(requireAdmin)
    .get("/orders", valid("query", ordersQuery), async (c) => {
      const page = await orders.listOrders(c.req.valid("query"), await c.var.auth());
      return c.json({ orders: page.orders.map(adminOrderView), nextPageToken: page.nextPageToken || null });
    })
    .patch("/products/:id", valid("param", productParam), valid("json", productPatch), async (c) => {
      const { id } = c.req.valid("param");
      const patch = c.req.valid("json");
      const auth = await c.var.auth();
      // A price is money: it keeps the product's currency.
      const currencyCode = patch.priceMinor === undefined ? "" : ((await catalog.getProduct({ id })).product?.price?.currencyCode ?? "USD");
      const paths = [
        patch.name !== undefined && "name",
        patch.description !== undefined && "description",
        patch.priceMinor !== undefined && "price",
        patch.imageUrl !== undefined && "image_url",
      ].filter((p): p is string => p !== false);
      const { product } = await catalog.updateProduct(
        {
          product: {
            id,
            name: patch.name ?? "",
            description: patch.description ?? "",
            imageUrl: patch.imageUrl ?? "",
            price: patch.priceMinor === undefined ? undefined : { currencyCode, amountMinor: BigInt(patch.priceMinor) },
          },
          updateMask: { paths },
        },
        auth,
      );
      if (!product) throw new Error("catalog answered UpdateProduct without a product");
      // The admin sees their change on this replica's product page at once; other replicas
      // learn it from ProductUpdated.
      productPage.offerProduct(product);
      return c.json({ product: productView(product) });
    })
    .post("/stock/:productId", valid("param", stockParam), valid("json", stockBody), async (c) => {
      const { productId } = c.req.valid("param");
      const { delta, reason } = c.req.valid("json");
      const { level } = await inventory.adjustStock({ productId, delta, reason }, await c.var.auth());
      if (level) productPage.offerStock(level);
      return c.json({ stock: stockView(level) });
    });
}
