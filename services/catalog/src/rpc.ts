import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { InvalidArgumentError } from "@bazaar/platform/errors";
import type { ServiceImpl } from "@bazaar/platform/grpc/server";
import { CatalogService, type ProductSchema } from "@bazaar/proto/bazaar/catalog/v1/catalog_pb";
import { decodePageToken, encodePageToken } from "./page-token.ts";
import type { ProductRow, ProductStore } from "./products.ts";

const defaultPageSize = 20;
const maxPageSize = 100;
const maxBatch = 100;
const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const slugPattern = /^[a-z0-9]+(?:-[a-z0-9]+)*$/;

/** Row → message. */
export function toProductMessage(p: ProductRow): MessageInitShape<typeof ProductSchema> {
  return {
    id: p.id,
    sku: p.sku,
    slug: p.slug,
    name: p.name,
    description: p.description,
    categoryId: p.categoryId,
    price: { currencyCode: p.currency, amountMinor: BigInt(p.priceMinor) },
    imageUrl: p.imageUrl,
    updateTime: timestampFromDate(p.updatedAt),
  };
}

function requireProductId(id: string, field: string): string {
  if (!id) throw new InvalidArgumentError("is required", field);
  if (!uuidPattern.test(id)) throw new InvalidArgumentError(`must be a product id (a UUID), got ${JSON.stringify(id.slice(0, 64))}`, field);
  return id.toLowerCase();
}

/** The catalog's RPC handlers: validate the request, ask the store, shape the response. */
export function catalogHandlers(store: ProductStore): ServiceImpl<typeof CatalogService> {
  return {
    async listProducts(req) {
      if (req.pageSize < 0 || req.pageSize > maxPageSize) {
        throw new InvalidArgumentError(`must be between 1 and ${maxPageSize} (0 means ${defaultPageSize}), got ${req.pageSize}`, "page_size");
      }
      if (req.query.length > 200) throw new InvalidArgumentError(`must be at most 200 characters, got ${req.query.length}`, "query");
      if (req.categoryId && (req.categoryId.length > 64 || !slugPattern.test(req.categoryId))) {
        throw new InvalidArgumentError("must be a category id such as \"coffee-tea\"", "category_id");
      }
      const filter = { categoryId: req.categoryId, query: req.query.trim() };
      const filterKey = JSON.stringify([filter.categoryId, filter.query]);
      const cursor = req.pageToken ? decodePageToken(req.pageToken, filterKey) : undefined;
      const page = await store.list(filter, req.pageSize || defaultPageSize, cursor);
      return {
        products: page.products.map(toProductMessage),
        nextPageToken: page.next ? encodePageToken({ ...page.next, filter: filterKey }) : "",
        totalSize: page.totalSize,
      };
    },

    async getProduct(req) {
      return { product: toProductMessage(await store.get(requireProductId(req.id, "id"))) };
    },

    async batchGetProducts(req) {
      if (req.ids.length === 0) throw new InvalidArgumentError("must name at least one product", "ids");
      if (req.ids.length > maxBatch) throw new InvalidArgumentError(`must name at most ${maxBatch} products, got ${req.ids.length}`, "ids");
      const ids = [...new Set(req.ids.map((id, i) => requireProductId(id, `ids[${i}]`)))];
      const found = await store.getMany(ids);
      return {
        products: ids.flatMap((id) => {
          const p = found.get(id);
          return p ? [toProductMessage(p)] : [];
        }),
        missingIds: ids.filter((id) => !found.has(id)),
      };
    },

    async listCategories() {
      return { categories: await store.categories() };
    },
  };
}
