import type { Category, Product } from "@bazaar/proto/bazaar/catalog/v1/catalog_pb";
import type { Money } from "@bazaar/proto/bazaar/common/v1/money_pb";

/** A price as the web UI shows it. */
export interface PriceView {
  currency: string;
  /** In the currency's minor unit (cents). */
  amountMinor: number;
  /** Formatted for display, e.g. "$26.50". */
  display: string;
}

/** A product as the web UI shows it. */
export interface ProductView {
  id: string;
  slug: string;
  sku: string;
  name: string;
  description: string;
  categoryId: string;
  price: PriceView;
  imageUrl: string;
}

const formatters = new Map<string, { format: Intl.NumberFormat; digits: number }>();

/** Money → a price for display. Minor units stay integers; only display formats them. */
export function priceView(money: Money | undefined): PriceView {
  const currency = money?.currencyCode || "USD";
  const amountMinor = Number(money?.amountMinor ?? 0n);
  let formatter = formatters.get(currency);
  if (!formatter) {
    const format = new Intl.NumberFormat("en-US", { style: "currency", currency });
    formatter = { format, digits: format.resolvedOptions().maximumFractionDigits ?? 2 };
    formatters.set(currency, formatter);
  }
  return { currency, amountMinor, display: formatter.format.format(amountMinor / 10 ** formatter.digits) };
}

/** Product message → the shape the web UI uses. */
export function productView(p: Product): ProductView {
  return {
    id: p.id,
    slug: p.slug,
    sku: p.sku,
    name: p.name,
    description: p.description,
    categoryId: p.categoryId,
    price: priceView(p.price),
    imageUrl: p.imageUrl,
  };
}

/** A category as the web UI shows it. */
export interface CategoryView {
  id: string;
  name: string;
  description: string;
  productCount: number;
}

/** Category message → the shape the web UI uses. */
export function categoryView(c: Category): CategoryView {
  return { id: c.id, name: c.name, description: c.description, productCount: c.productCount };
}
