import { Hono } from "hono";
import { z } from "zod";
import { log } from "@bazaar/platform/log";
import type { AppEnv } from "../auth.ts";
import type { CartCounts } from "../cart-counts.ts";
import { fanOut } from "../fan-out.ts";
import { categoryView, productView } from "../shape.ts";
import type { CartClient } from "../upstreams/cart.ts";
import type { CatalogClient } from "../upstreams/catalog.ts";
import type { ProductPageModel } from "../product-page-model.ts";
import { pageSizeQuery, valid } from "../validate.ts";

const listQuery = z.object({
  q: z.string().trim().max(200, "must be at most 200 characters").optional().default(""),
  category: z
    .string()
    .regex(/^[a-z0-9]+(?:-[a-z0-9]+)*$/, "must be a category id such as coffee-tea")
    .max(64)
    .optional()
    .default(""),
  pageSize: pageSizeQuery(24),
  pageToken: z.string().max(1024, "is too long").optional().default(""),
});

const idParam = z.object({ id: z.string().uuid("must be a product id") });

/** A part of a page the page can do without: null (and a warning in the log) if its call fails. */
function extra<T>(what: string, signal: AbortSignal, call: Promise<T>): Promise<T | null> {
  return call.catch((err: unknown) => {
    // Cancelled because the page failed anyway: nothing to report.
    if (!signal.aborted) log.warn(`product page without ${what}`, { err: (err as Error).message });
    return null;
  });
}

/** /api/products: the catalog listing, search, and the product page. */
export function productRoutes(catalog: CatalogClient, productPage: ProductPageModel, cart: CartClient, cartCounts: CartCounts) {
  return (
    new Hono<AppEnv>()
      .get("/", valid("query", listQuery), async (c) => {
        const { q, category, pageSize, pageToken } = c.req.valid("query");
        const page = await catalog.listProducts({ query: q, categoryId: category, pageSize, pageToken });
        return c.json({
          products: page.products.map(productView),
          nextPageToken: page.nextPageToken || null,
          total: page.totalSize,
        });
      })
      // The product page: the product, its stock and (signed in) the cart's size, in parallel.
      // Product and stock come from this process's read model (no call when warm, one on a
      // miss), the cart's size from the count the BFF keeps per user (CartCounts). The product is the page: its failure is the answer. Stock and cart size are
      // extras: null when their service fails, so an inventory or cart outage does not take
      // product pages down.
      .get("/:id", valid("param", idParam), async (c) => {
        const { id } = c.req.valid("param");
        const [product, available, cartCount] = await fanOut((signal) => [
          productPage.product(id),
          extra("stock", signal, productPage.available(id)),
          // The session, then the count kept for its user (or the cart service's), is read
          // from Redis while the other two are looked up.
          extra(
            "cart count",
            signal,
            c.var.optionalAuth().then(async (auth) => {
              const session = await c.var.session();
              if (!auth || !session) return 0;
              return cartCounts.count(session.record.user.id, () => cart.getCart({}, { ...auth, signal }).then((r) => r.cart));
            }),
          ),
        ]);
        return c.json({ product, stock: { available }, cartCount });
      })
  );
}

/** /api/categories: every category with its product count. */
export function categoryRoutes(catalog: CatalogClient) {
  return new Hono().get("/", async (c) => {
    const { categories } = await catalog.listCategories({});
    return c.json({ categories: categories.map(categoryView) });
  });
}
