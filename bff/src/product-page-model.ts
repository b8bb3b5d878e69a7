import type { MessageShape } from "@bufbuild/protobuf";
import type { Timestamp } from "@bufbuild/protobuf/wkt";
import type { events } from "@bazaar/platform/messaging/events";
import { type ProductView, productView } from "./shape.ts";
import type { Product } from "@bazaar/proto/bazaar/catalog/v1/catalog_pb";
import type { StockLevel } from "@bazaar/proto/bazaar/inventory/v1/inventory_pb";
import type { CatalogClient } from "./upstreams/catalog.ts";
import type { InventoryClient } from "./upstreams/inventory.ts";
import { type Versioned, VersionedCache } from "./versioned-cache.ts";

/** Options of {@link ProductPageModel}. */
export interface ProductPageModelOptions {
  /** Products (and, apart, stock levels) kept at most. */
  maxEntries?: number;
  /** How long an entry is served unconfirmed (see VersionedCacheOptions.maxAgeMs). */
  maxAgeMs?: number;
  /** Whether the events that keep it current are arriving; while not, every read asks the services. */
  isLive?: () => boolean;
}

/** A Timestamp as one number that orders like it (nanoseconds since the epoch); 0 when absent. */
function timestampVersion(t: Timestamp | undefined): bigint {
  return t ? t.seconds * 1_000_000_000n + BigInt(t.nanos) : 0n;
}

type ProductUpdated = MessageShape<typeof events.productUpdated.schema>;
type StockChanged = MessageShape<typeof events.stockChanged.schema>;

/**
 * What the product page shows of the catalog and inventory, kept in this process: products
 * and stock levels, each loaded once on a miss and then kept current by ProductUpdated and
 * StockChanged (see followCatalogEvents in catalog-events.ts), so a warm page asks no service. Both events
 * carry the version their source gives the data (the product's update_time, the stock row's
 * version), as GetProduct and GetStock answers do, so whatever arrives in whatever order, the
 * newest is kept. Each BFF replica holds its own; it is dropped whenever its events may have
 * been missed (a lost broker connection), and bypassed while they cannot arrive.
 *
 * Prices shown here may be up to the event delay old (well under a second while the broker
 * is up); checkout still sends the total the shopper saw and orders checks it against the
 * catalog, so a stale page can never charge a wrong price.
 */
export class ProductPageModel {
  private readonly products: VersionedCache<ProductView>;
  private readonly stock: VersionedCache<number>;

  constructor(
    private readonly catalog: CatalogClient,
    private readonly inventory: InventoryClient,
    options: ProductPageModelOptions = {},
  ) {
    const common = { maxEntries: options.maxEntries ?? 10_000, maxAgeMs: options.maxAgeMs ?? 10_000, isLive: options.isLive ?? (() => false) };
    this.products = new VersionedCache({ ...common, name: "bff.products" });
    this.stock = new VersionedCache({ ...common, name: "bff.stock" });
  }

  /** The product as the page shows it (a GetProduct on a miss; its errors are the caller's). */
  product(id: string): Promise<ProductView> {
    return this.products.get(id, async (): Promise<Versioned<ProductView>> => {
      const { product } = await this.catalog.getProduct({ id });
      if (!product) throw new Error("catalog answered GetProduct without a product");
      return { value: productView(product), version: timestampVersion(product.updateTime) };
    });
  }

  /** Units available to buy (a GetStock on a miss). */
  available(id: string): Promise<number> {
    return this.stock.get(id, async (): Promise<Versioned<number>> => {
      const { levels } = await this.inventory.getStock({ productIds: [id] });
      const level = levels[0];
      return { value: level?.available ?? 0, version: level?.version ?? 0n };
    });
  }

  /** An answer of the catalog that passed through the BFF (an admin's UpdateProduct): kept if newer. */
  offerProduct(product: Product): void {
    this.products.offer(product.id, { value: productView(product), version: timestampVersion(product.updateTime) });
  }

  /** An answer of inventory that passed through the BFF (an admin's AdjustStock): kept if newer. */
  offerStock(level: StockLevel): void {
    this.stock.offer(level.productId, { value: level.available, version: level.version });
  }

  /** Applies a ProductUpdated. */
  readonly productUpdated = (e: ProductUpdated): void => {
    // An event from a catalog older than update_time on events says only "changed".
    if (!e.updateTime) {
      this.products.forget(e.productId);
      return;
    }
    this.products.offer(e.productId, {
      value: productView({ ...e, id: e.productId }),
      version: timestampVersion(e.updateTime),
    });
  };

  /** Applies a StockChanged. */
  readonly stockChanged = (e: StockChanged): void => {
    // 0: from an inventory older than versions on events, which says only "changed".
    if (e.version === 0n) this.stock.forget(e.productId);
    else this.stock.offer(e.productId, { value: e.available, version: e.version });
  };

  /** Forgets everything: events may have been missed. */
  clear(): void {
    this.products.clear();
    this.stock.clear();
  }
}
