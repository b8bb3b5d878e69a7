import { sql } from "drizzle-orm";
import { bigint, check, customType, index, pgTable, text, timestamp, uuid } from "drizzle-orm/pg-core";

/** Postgres full-text search document. */
const tsvector = customType<{ data: string }>({ dataType: () => "tsvector" });

/** Categories group products for browsing; the id is a URL slug. */
export const categories = pgTable("categories", {
  id: text("id").primaryKey(),
  name: text("name").notNull(),
  description: text("description").notNull().default(""),
});

/** Products the shop sells. Prices are integers in the currency's minor unit. */
export const products = pgTable(
  "products",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    sku: text("sku").notNull().unique(),
    slug: text("slug").notNull().unique(),
    name: text("name").notNull(),
    description: text("description").notNull(),
    categoryId: text("category_id")
      .notNull()
      .references(() => categories.id),
    priceMinor: bigint("price_minor", { mode: "number" }).notNull(),
    currency: text("currency").notNull().default("USD"),
    imageUrl: text("image_url").notNull().default(""),
    /** Name (weight A) and description (weight B), kept up to date by Postgres itself. */
    searchDocument: tsvector("search_document")
      .notNull()
      .generatedAlwaysAs(sql`setweight(to_tsvector('english', name), 'A') || setweight(to_tsvector('english', description), 'B')`),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    // Paging is keyset on (name, id), overall and within a category.
    index("products_name_id_idx").on(t.name, t.id),
    index("products_category_name_id_idx").on(t.categoryId, t.name, t.id),
    // Text search: `search_document @@ to_tsquery(...)` uses this GIN index.
    index("products_search_document_idx").using("gin", t.searchDocument),
    check("products_price_minor_non_negative", sql`${t.priceMinor} >= 0`),
    check("products_currency_iso", sql`${t.currency} ~ '^[A-Z]{3}$'`),
  ],
);

/** A category row. */
export type CategoryRow = typeof categories.$inferSelect;

// The transactional outbox: ProductUpdated events are written with the change.
export { outbox } from "@bazaar/platform/messaging/tables";
