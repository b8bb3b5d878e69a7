import { count, sql } from "drizzle-orm";
import { log } from "@bazaar/platform/log";
import { events } from "@bazaar/platform/messaging/events";
import { enqueueEvent } from "@bazaar/platform/messaging/outbox";
import { categories, products } from "./db/schema.ts";
import { type CatalogDatabase, productEvent } from "./products.ts";
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
    const inserted = await tx
      .insert(products)
      .values(
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
      )
      .returning();
    // Other services (inventory) learn of products from these events, as they would of new ones.
    for (const p of inserted) {
      await enqueueEvent(tx, events.productUpdated, productEvent(p, true));
    }
    log.info("seeded the demo catalog", { categories: seedCategories.length, products: seedProducts.length });
    return { seeded: true, products: seedProducts.length };
  });
}
