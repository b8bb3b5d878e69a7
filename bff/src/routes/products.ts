import { Hono } from "hono";
import { z } from "zod";
import type { CatalogClient } from "../upstreams/catalog.ts";
import { categoryView, productView } from "../shape.ts";
import { valid } from "../validate.ts";

const listQuery = z.object({
  q: z.string().trim().max(200, "must be at most 200 characters").optional().default(""),
  category: z
    .string()
    .regex(/^[a-z0-9]+(?:-[a-z0-9]+)*$/, "must be a category id such as coffee-tea")
    .max(64)
    .optional()
    .default(""),
  pageSize: z.coerce.number({ error: "must be a number" }).int("must be a whole number").min(1, "must be at least 1").max(100, "must be at most 100").optional().default(24),
  pageToken: z.string().max(1024, "is too long").optional().default(""),
});

const idParam = z.object({ id: z.string().uuid("must be a product id") });

/** /api/products: the catalog listing, search, and one product. */
export function productRoutes(catalog: CatalogClient) {
  return new Hono()
    .get("/", valid("query", listQuery), async (c) => {
      const { q, category, pageSize, pageToken } = c.req.valid("query");
      const page = await catalog.listProducts({ query: q, categoryId: category, pageSize, pageToken });
      return c.json({
        products: page.products.map(productView),
        nextPageToken: page.nextPageToken || null,
        total: page.totalSize,
      });
    })
    .get("/:id", valid("param", idParam), async (c) => {
      const { product } = await catalog.getProduct({ id: c.req.valid("param").id });
      if (!product) throw new Error("catalog answered GetProduct without a product");
      return c.json({ product: productView(product) });
    });
}

/** /api/categories: every category with its product count. */
export function categoryRoutes(catalog: CatalogClient) {
  return new Hono().get("/", async (c) => {
    const { categories } = await catalog.listCategories({});
    return c.json({ categories: categories.map(categoryView) });
  });
}
