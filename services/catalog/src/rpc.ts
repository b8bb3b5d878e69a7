import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { ServiceAccess, ServiceImpl } from "@bazaar/platform/grpc/server";
import { isJsonObject, pageTokenCodec } from "@bazaar/platform/page-token";
import type { CatalogService, Product, ProductSchema } from "@bazaar/proto/bazaar/catalog/v1/catalog_pb";
import type { NewProduct, ProductChange, ProductCursor, ProductRow, ProductStore } from "./products.ts";
import { type FieldCheck, field, imageUrl, list, money, pageSize, type Rule, required, text, uuid, validate, violation } from "@bazaar/platform/validation";

const maxBatch = 100;
const slugPattern = /^[a-z0-9]+(?:-[a-z0-9]+)*$/;
const productId = uuid("a product id");

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
type UpdatableField = (typeof updatableFields)[number];

/** A category id such as "coffee-tea". */
const categoryId: Rule<string, string> = (id) => {
  if (!slugPattern.test(id) || id.length > 64) violation('must be a category id such as "coffee-tea"');
  return id;
};

/** The rule of each field a create or update sets, and where its value goes in the change. */
const productFieldRules: Record<UpdatableField, (p: Product) => FieldCheck<ProductChange>> = {
  name: (p) =>
    field("name", p.name, (name) => {
      if (!name.trim() || name.length > 120) violation("must be 1 to 120 characters");
      return { name: name.trim() };
    }),
  description: (p) => field("description", p.description, (d) => ({ description: text({ max: 2000 })(d) })),
  category_id: (p) => field("category_id", p.categoryId, (id) => ({ categoryId: categoryId(id) })),
  price: (p) =>
    field("price", p.price, (price) => {
      const { currencyCode, amountMinor } = required(money(0n, 100_000_000n))(price);
      return { priceMinor: amountMinor, currency: currencyCode };
    }),
  image_url: (p) => field("image_url", p.imageUrl, (url) => ({ imageUrl: imageUrl(url) })),
};

/** Checks the fields of a product message that a create or update sets; returns them as a change. */
function productFields(p: Product, fields: readonly UpdatableField[]): ProductChange {
  const checked = validate(Object.fromEntries(fields.map((f) => [f, productFieldRules[f](p)])));
  return Object.assign({}, ...Object.values(checked)) as ProductChange;
}

/** The catalog's RPC handlers: validate the request, ask the store, shape the response. */
export function catalogHandlers(store: ProductStore): ServiceImpl<typeof CatalogService> {
  return {
    async listProducts(req) {
      const { size } = validate({
        size: field("page_size", req.pageSize, pageSize),
        query: field("query", req.query, text({ max: 200 })),
        categoryId: field("category_id", req.categoryId, (id) => id && categoryId(id)),
      });
      const filter = { categoryId: req.categoryId, query: req.query.trim() };
      const filterKey = JSON.stringify([filter.categoryId, filter.query]);
      const cursor = req.pageToken ? pageTokens.decode(req.pageToken, filterKey) : undefined;
      const page = await store.list(filter, size, cursor);
      return {
        products: page.products.map(toProductMessage),
        nextPageToken: page.next ? pageTokens.encode(page.next, filterKey) : "",
        totalSize: page.totalSize,
      };
    },

    async getProduct(req) {
      const { id } = validate({ id: field("id", req.id, productId) });
      return { product: toProductMessage(await store.get(id)) };
    },

    async batchGetProducts(req) {
      const checked = validate({ ids: field("ids", req.ids, list(productId, { min: 1, max: maxBatch, noun: "product" })) });
      const ids = [...new Set(checked.ids)];
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
      const { product } = validate({
        product: field(
          "product",
          req.product,
          required((p) =>
            validate({
              sku: field("sku", p.sku, (sku) => {
                if (!skuPattern.test(sku) || sku.length > 32) violation("must be upper-case letters and digits with dashes, e.g. KIT-0013");
                return sku;
              }),
              slug: field("slug", p.slug, (slug) => {
                if (!slugPattern.test(slug) || slug.length > 120) violation("must be lower-case words joined by dashes");
                return slug;
              }),
              fields: field("", p, (all) => productFields(all, updatableFields)),
            }),
          ),
        ),
      });
      const { sku, slug, fields } = product;
      const created = await store.create({ sku, slug, description: "", imageUrl: "", ...fields } as NewProduct);
      return { product: toProductMessage(created) };
    },

    async updateProduct(req) {
      const { product, paths } = validate({
        product: field(
          "product",
          req.product,
          required((p) => p),
        ),
        paths: field("update_mask", req.updateMask?.paths ?? [], (paths) => {
          if (paths.length === 0) violation(`must name at least one of ${updatableFields.join(", ")}`);
          const unknown = paths.filter((path) => !(updatableFields as readonly string[]).includes(path));
          if (unknown.length) violation(`cannot change ${unknown.join(", ")}; only ${updatableFields.join(", ")}`);
          return paths as UpdatableField[];
        }),
      });
      const { id, change } = validate({
        id: field("product.id", product.id, productId),
        change: field("product", product, (p) => productFields(p, paths)),
      });
      const updated = await store.update(id, change);
      return { product: toProductMessage(updated) };
    },
  };
}
