import { count, sql } from "drizzle-orm";
import { log } from "@bazaar/platform/log";
import { categories, products } from "./db/schema.ts";
import type { CatalogDatabase } from "./products.ts";
import { seedCategories, seedProducts } from "./seed-data.ts";

/** Loads the demo catalog into an empty database; leaves a database with products alone. */
export async function seedCatalog(database: CatalogDatabase): Promise<{ seeded: boolean; products: number }> {
  return database.db.transaction(async (tx) => {
    // Serialize concurrent seeders (two dev runners) on one lock for this transaction.
    await tx.execute(sql`select pg_advisory_xact_lock(hashtext(${"bazaar:catalog:seed"}))`);
    const [existing] = await tx.select({ n: count() }).from(products);
    if ((existing?.n ?? 0) > 0) return { seeded: false, products: existing?.n ?? 0 };
    await tx
      .insert(categories)
      .values(seedCategories.map((c) => ({ id: c.slug, name: c.name, description: c.description })))
      .onConflictDoNothing();
    await tx.insert(products).values(
      seedProducts.map((p) => ({
        sku: p.sku,
        slug: p.slug,
        name: p.name,
        description: p.description,
        categoryId: p.categorySlug,
        priceMinor: p.priceMinor,
        currency: p.currency,
        imageUrl: p.imageUrl,
      })),
    );
    log.info("seeded the demo catalog", { categories: seedCategories.length, products: seedProducts.length });
    return { seeded: true, products: seedProducts.length };
  });
}
