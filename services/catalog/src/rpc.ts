import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { InvalidArgumentError } from "@bazaar/platform/errors";
import type { ServiceAccess, ServiceImpl } from "@bazaar/platform/grpc/server";
import { isJsonObject, pageTokenCodec } from "@bazaar/platform/page-token";
import { CatalogService, type Product, type ProductSchema } from "@bazaar/proto/bazaar/catalog/v1/catalog_pb";
import type { NewProduct, ProductChange, ProductCursor, ProductRow, ProductStore } from "./products.ts";
import { uuidPattern } from "@bazaar/platform/ids";

const defaultPageSize = 20;
const maxPageSize = 100;
const maxBatch = 100;
const slugPattern = /^[a-z0-9]+(?:-[a-z0-9]+)*$/;

/** ListProducts page tokens, each good only for the filter (category and query) it was issued for. */
const pageTokens = pageTokenCodec<ProductCursor>({
  parse: (c) => (isJsonObject(c) && typeof c.name === "string" && typeof c.id === "string" ? { name: c.name, id: c.id } : undefined),
  mismatch: () => "was issued for a different category or query; use the same filter or start again",
});

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

/** Who may call what: reads are public, changes are for admins. */
export const catalogAccess: ServiceAccess<typeof CatalogService> = {
  listProducts: "public",
  getProduct: "public",
  batchGetProducts: "public",
  listCategories: "public",
  createProduct: "admin",
  updateProduct: "admin",
};

const skuPattern = /^[A-Z0-9]+(?:-[A-Z0-9]+)*$/;
const updatableFields = ["name", "description", "category_id", "price", "image_url"] as const;

/** Checks the fields of a product message that a create or update sets; returns them as a change. */
function productFields(p: Product, fields: readonly (typeof updatableFields)[number][]): ProductChange {
  const change: ProductChange = {};
  for (const field of fields) {
    switch (field) {
      case "name":
        if (!p.name.trim() || p.name.length > 120) throw new InvalidArgumentError("must be 1 to 120 characters", "product.name");
        change.name = p.name.trim();
        break;
      case "description":
        if (p.description.length > 2000) throw new InvalidArgumentError("must be at most 2000 characters", "product.description");
        change.description = p.description;
        break;
      case "category_id":
        if (!slugPattern.test(p.categoryId) || p.categoryId.length > 64) throw new InvalidArgumentError("must be a category id such as \"coffee-tea\"", "product.category_id");
        change.categoryId = p.categoryId;
        break;
      case "price": {
        const price = p.price;
        if (!price) throw new InvalidArgumentError("is required", "product.price");
        if (!/^[A-Z]{3}$/.test(price.currencyCode)) throw new InvalidArgumentError("must be an ISO 4217 code such as USD", "product.price.currency_code");
        if (price.amountMinor < 0n || price.amountMinor > 100_000_000n) {
          throw new InvalidArgumentError("must be between 0 and 100000000 (minor units)", "product.price.amount_minor");
        }
        change.priceMinor = Number(price.amountMinor);
        change.currency = price.currencyCode;
        break;
      }
      case "image_url":
        if (p.imageUrl.length > 500 || (p.imageUrl && !/^(\/|https:\/\/)[^\s]*$/.test(p.imageUrl))) {
          throw new InvalidArgumentError("must be a path starting with / or an https URL, at most 500 characters", "product.image_url");
        }
        change.imageUrl = p.imageUrl;
        break;
    }
  }
  return change;
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
      const cursor = req.pageToken ? pageTokens.decode(req.pageToken, filterKey) : undefined;
      const page = await store.list(filter, req.pageSize || defaultPageSize, cursor);
      return {
        products: page.products.map(toProductMessage),
        nextPageToken: page.next ? pageTokens.encode(page.next, filterKey) : "",
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

    async createProduct(req) {
      const p = req.product;
      if (!p) throw new InvalidArgumentError("is required", "product");
      if (!skuPattern.test(p.sku) || p.sku.length > 32) throw new InvalidArgumentError("must be upper-case letters and digits with dashes, e.g. KIT-0013", "product.sku");
      if (!slugPattern.test(p.slug) || p.slug.length > 120) throw new InvalidArgumentError("must be lower-case words joined by dashes", "product.slug");
      const fields = productFields(p, updatableFields);
      const created = await store.create({ sku: p.sku, slug: p.slug, description: "", imageUrl: "", ...fields } as NewProduct);
      return { product: toProductMessage(created) };
    },

    async updateProduct(req) {
      const p = req.product;
      if (!p) throw new InvalidArgumentError("is required", "product");
      const paths = req.updateMask?.paths ?? [];
      if (paths.length === 0) throw new InvalidArgumentError(`must name at least one of ${updatableFields.join(", ")}`, "update_mask");
      const unknown = paths.filter((path) => !(updatableFields as readonly string[]).includes(path));
      if (unknown.length) throw new InvalidArgumentError(`cannot change ${unknown.join(", ")}; only ${updatableFields.join(", ")}`, "update_mask");
      const id = requireProductId(p.id, "product.id");
      const updated = await store.update(id, productFields(p, paths as (typeof updatableFields)[number][]));
      return { product: toProductMessage(updated) };
    },
  };
}
