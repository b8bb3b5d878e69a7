import { and, asc, count, eq, getTableColumns, gt, inArray, or, sql, type SQL } from "drizzle-orm";
import type { CacheAside } from "@bazaar/platform/cache";
import { type Database, postgresError } from "@bazaar/platform/db";
import { timestampFromDate, timestampNow } from "@bufbuild/protobuf/wkt";
import { AlreadyExistsError, InvalidArgumentError, NotFoundError } from "@bazaar/platform/errors";
import { events } from "@bazaar/platform/messaging/events";
import { enqueueEvent, type OutboxSignal } from "@bazaar/platform/messaging/outbox";
import { categories, type CategoryRow, products } from "./db/schema.ts";
import type * as schema from "./db/schema.ts";

/** The catalog's database. */
export type CatalogDatabase = Database<typeof schema>;

// Every column but the search document, which only Postgres needs.
const { searchDocument: _searchDocument, ...productColumns } = getTableColumns(products);

/** A product as the catalog hands it out. */
export type ProductRow = Omit<typeof products.$inferSelect, "searchDocument">;

/** Stores products in the cache as JSON, reviving the timestamps. */
export const productCodec = {
  encode: (p: ProductRow) => JSON.stringify(p),
  decode: (text: string): ProductRow => {
    const p = JSON.parse(text) as ProductRow & { createdAt: string; updatedAt: string };
    return { ...p, createdAt: new Date(p.createdAt), updatedAt: new Date(p.updatedAt) };
  },
};

/** A filter of the product listing. */
export interface ProductFilter {
  categoryId?: string;
  /** Free text; each word must match a word of the name or description as a prefix. */
  query?: string;
}

/**
 * Where the previous page ended. Keyset paging on (name, id) means a page never repeats or
 * skips a product, even while products change.
 */
export interface ProductCursor {
  /** Name of the last product on the previous page. */
  name: string;
  /** Id of the last product on the previous page (the tie-breaker). */
  id: string;
}

/** One page of products. */
export interface ProductPage {
  products: ProductRow[];
  /** The cursor after the last product, when there are more. */
  next?: ProductCursor;
  totalSize: number;
}

/** The fields of a product that can change. */
export type ProductChange = Partial<Pick<ProductRow, "name" | "description" | "categoryId" | "priceMinor" | "currency" | "imageUrl">>;

/** A new product. */
export type NewProduct = Pick<ProductRow, "sku" | "slug" | "name" | "description" | "categoryId" | "priceMinor" | "currency" | "imageUrl">;

/** Turns a constraint violation into an error the caller can act on; rethrows anything else. */
function constraintError(err: unknown): never {
  const pg = postgresError(err);
  if (pg?.code === "23505") throw new AlreadyExistsError(`a product with this ${pg.constraint?.includes("slug") ? "slug" : "SKU"} exists already`);
  if (pg?.code === "23503") throw new InvalidArgumentError("names no existing category", "product.category_id");
  if (pg?.code === "23514") throw new InvalidArgumentError(`is not allowed (${pg.constraint})`, "product");
  throw err;
}

/**
 * Turns free text into a prefix tsquery: "Ceramic mu" → `ceramic:* & mu:*`. Only letters
 * and digits survive, so no user input reaches tsquery syntax. Empty when no word is left.
 */
export function toPrefixQuery(text: string): string {
  const words = text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [];
  return words
    .slice(0, 8)
    .map((w) => `${w}:*`)
    .join(" & ");
}

/**
 * The catalog's products and categories: listing and search straight from Postgres (indexed),
 * single and batch reads through the Redis cache, and changes that invalidate the cache.
 */
export class ProductStore {
  constructor(
    private readonly database: CatalogDatabase,
    private readonly cache: CacheAside<ProductRow>,
    private readonly outbox: OutboxSignal = { wake() {} },
  ) {}

  private filterSql(filter: ProductFilter): SQL | undefined {
    const conditions: SQL[] = [];
    if (filter.categoryId) conditions.push(eq(products.categoryId, filter.categoryId));
    const tsquery = filter.query ? toPrefixQuery(filter.query) : "";
    if (tsquery) conditions.push(sql`${products.searchDocument} @@ to_tsquery('english', ${tsquery})`);
    return conditions.length ? and(...conditions) : undefined;
  }

  /** One page of products ordered by (name, id), after `cursor` if given. */
  async list(filter: ProductFilter, pageSize: number, cursor?: ProductCursor): Promise<ProductPage> {
    const { db } = this.database;
    const where = this.filterSql(filter);
    const after = cursor ? or(gt(products.name, cursor.name), and(eq(products.name, cursor.name), gt(products.id, cursor.id))) : undefined;
    const [rows, [total]] = await Promise.all([
      db
        .select(productColumns)
        .from(products)
        .where(and(where, after))
        .orderBy(asc(products.name), asc(products.id))
        .limit(pageSize + 1),
      db.select({ n: count() }).from(products).where(where),
    ]);
    const page = rows.slice(0, pageSize);
    const last = page.at(-1);
    return {
      products: page,
      next: rows.length > pageSize && last ? { name: last.name, id: last.id } : undefined,
      totalSize: total?.n ?? 0,
    };
  }

  /** Products by id, through the cache; ids that name no product are left out. */
  async getMany(ids: readonly string[]): Promise<Map<string, ProductRow>> {
    return this.cache.getMany(ids, async (missing) => {
      const rows = await this.database.db.select(productColumns).from(products).where(inArray(products.id, missing));
      return new Map(rows.map((r) => [r.id, r]));
    });
  }

  /** One product by id, through the cache. */
  async get(id: string): Promise<ProductRow> {
    const product = (await this.getMany([id])).get(id);
    if (!product) throw new NotFoundError(`no product has id ${id}`);
    return product;
  }

  /** Every category with its number of products, ordered by name. */
  async categories(): Promise<(CategoryRow & { productCount: number })[]> {
    return this.database.db
      .select({
        id: categories.id,
        name: categories.name,
        description: categories.description,
        productCount: sql<number>`count(${products.id})::int`,
      })
      .from(categories)
      .leftJoin(products, eq(products.categoryId, categories.id))
      .groupBy(categories.id)
      .orderBy(asc(categories.name));
  }

  /** Adds a product and, in the same transaction, its ProductUpdated event. */
  async create(product: NewProduct): Promise<ProductRow> {
    const row = await this.database.db
      .transaction(async (tx) => {
        const [created] = await tx.insert(products).values(product).returning(productColumns);
        if (!created) throw new Error("the insert returned no row");
        await enqueueEvent(tx, events.productUpdated, productEvent(created, true));
        return created;
      })
      .catch(constraintError);
    this.outbox.wake();
    return row;
  }

  /**
   * Changes a product, with its ProductUpdated event in the same transaction, and drops it
   * from this replica's cache once committed (other replicas drop theirs on the event).
   */
  async update(id: string, change: ProductChange): Promise<ProductRow> {
    const row = await this.database.db
      .transaction(async (tx) => {
        const [updated] = await tx
          .update(products)
          // The product's version for readers that keep it (ProductUpdated.update_time): read from
          // the clock when the row is written, under its lock, and at least a millisecond past the
          // last (a Date keeps milliseconds), so of two changes the later has the later time.
          .set({ ...change, updatedAt: sql`greatest(clock_timestamp(), ${products.updatedAt} + interval '1 millisecond')` })
          .where(eq(products.id, id))
          .returning(productColumns);
        if (!updated) throw new NotFoundError(`no product has id ${id}`);
        await enqueueEvent(tx, events.productUpdated, productEvent(updated, false));
        return updated;
      })
      .catch(constraintError);
    this.outbox.wake();
    await this.cache.invalidate([id]);
    return row;
  }

  /** Drops products from the cache (on a ProductUpdated event). */
  async forget(ids: readonly string[]): Promise<void> {
    await this.cache.invalidate(ids);
  }
}

/** The ProductUpdated event of a product as it now is. */
export function productEvent(p: ProductRow, created: boolean) {
  return {
    productId: p.id,
    sku: p.sku,
    slug: p.slug,
    name: p.name,
    description: p.description,
    categoryId: p.categoryId,
    price: { currencyCode: p.currency, amountMinor: BigInt(p.priceMinor) },
    imageUrl: p.imageUrl,
    created,
    occurTime: timestampNow(),
    updateTime: timestampFromDate(p.updatedAt),
  };
}
