import { type Timestamp, timestampDate } from "@bufbuild/protobuf/wkt";
import { formatMoney } from "@bazaar/platform/money";
import type { Cart } from "@bazaar/proto/bazaar/cart/v1/cart_pb";
import type { Category, Product } from "@bazaar/proto/bazaar/catalog/v1/catalog_pb";
import type { Money } from "@bazaar/proto/bazaar/common/v1/money_pb";
import type { User } from "@bazaar/proto/bazaar/identity/v1/identity_pb";
import type { StockLevel } from "@bazaar/proto/bazaar/inventory/v1/inventory_pb";
import type { Notification } from "@bazaar/proto/bazaar/notifications/v1/notifications_pb";
import { type Order, OrderStatus } from "@bazaar/proto/bazaar/orders/v1/orders_pb";

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

/** Money → a price for display. Minor units stay integers; only display formats them. */
export function priceView(money: Money | undefined): PriceView {
  const currency = money?.currencyCode || "USD";
  const amountMinor = Number(money?.amountMinor ?? 0n);
  return { currency, amountMinor, display: formatMoney({ currencyCode: currency, amountMinor: money?.amountMinor ?? 0n }) };
}

/** Product message (or a ProductUpdated event's fields, which are the same) → the shape the web UI uses. */
export function productView(p: Pick<Product, "id" | "slug" | "sku" | "name" | "description" | "categoryId" | "price" | "imageUrl">): ProductView {
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

/** A signed-in user as the web UI shows it. */
export interface UserView {
  id: string;
  email: string;
  displayName: string;
  roles: string[];
}

/** User message → the shape the web UI uses. */
export function userView(u: User): UserView {
  return { id: u.id, email: u.email, displayName: u.displayName, roles: [...u.roles] };
}

/** One line of the cart as the web UI shows it. */
export interface CartLineView {
  productId: string;
  name: string;
  imageUrl: string;
  quantity: number;
  unitPrice: PriceView;
  lineTotal: PriceView;
}

/** The cart as the web UI shows it. */
export interface CartView {
  lines: CartLineView[];
  total: PriceView;
  /** Units in the cart, over all lines (the header's badge). */
  itemCount: number;
  /**
   * Changes made to the cart; an emptied cart keeps it, and 0 means the cart service knows
   * of no cart (a lower revision than one seen before: the cart was lost, see cart.proto).
   */
  revision: number;
}

/** Cart message → the shape the web UI uses; no cart is an empty one. */
export function cartView(cart: Cart | undefined): CartView {
  return {
    lines: (cart?.lines ?? []).map((l) => ({
      productId: l.productId,
      name: l.name,
      imageUrl: l.imageUrl,
      quantity: l.quantity,
      unitPrice: priceView(l.unitPrice),
      lineTotal: priceView(l.lineTotal),
    })),
    total: priceView(cart?.total),
    itemCount: cart?.itemCount ?? 0,
    revision: cart?.revision ?? 0,
  };
}

/** Where an order stands, as the web UI names it. */
export type OrderStatusName = "PENDING" | "CONFIRMED" | "CANCELLED";

/** An order as the web UI shows it. */
export interface OrderView {
  id: string;
  status: OrderStatusName;
  items: { productId: string; name: string; quantity: number; unitPrice: PriceView; lineTotal: PriceView }[];
  total: PriceView;
  /** Why it was cancelled, when CANCELLED; otherwise null. */
  cancelReason: string | null;
  /** ISO 8601. */
  createdAt: string;
  /** ISO 8601. */
  updatedAt: string;
}

const statusNames: Record<OrderStatus, OrderStatusName> = {
  [OrderStatus.UNSPECIFIED]: "PENDING",
  [OrderStatus.PENDING]: "PENDING",
  [OrderStatus.CONFIRMED]: "CONFIRMED",
  [OrderStatus.CANCELLED]: "CANCELLED",
};

function isoTime(t: Timestamp | undefined): string {
  return t ? timestampDate(t).toISOString() : new Date(0).toISOString();
}

/** Order message → the shape the web UI uses. */
export function orderView(o: Order): OrderView {
  return {
    id: o.id,
    status: statusNames[o.status],
    items: o.items.map((i) => ({
      productId: i.productId,
      name: i.name,
      quantity: i.quantity,
      unitPrice: priceView(i.unitPrice),
      lineTotal: priceView(i.lineTotal),
    })),
    total: priceView(o.total),
    cancelReason: o.cancelReason || null,
    createdAt: isoTime(o.createTime),
    updatedAt: isoTime(o.updateTime),
  };
}

/** An order in the admin's list: whose it is, too. */
export interface AdminOrderView extends OrderView {
  userId: string;
}

/** Order message → the admin's view of it. */
export function adminOrderView(o: Order): AdminOrderView {
  return { ...orderView(o), userId: o.userId };
}

/** A notification as the web UI shows it. */
export interface NotificationView {
  id: string;
  kind: string;
  title: string;
  body: string;
  read: boolean;
  /** The order it is about, or null. */
  orderId: string | null;
  /** ISO 8601. */
  createdAt: string;
}

/** Notification message → the shape the web UI uses. */
export function notificationView(n: Notification): NotificationView {
  return { id: n.id, kind: n.kind, title: n.title, body: n.body, read: n.read, orderId: n.orderId || null, createdAt: isoTime(n.createTime) };
}

/** A product's stock as the admin page shows it. */
export interface StockView {
  onHand: number;
  reserved: number;
  available: number;
}

/** StockLevel message → the admin's view of it; none is no stock. */
export function stockView(level: StockLevel | undefined): StockView {
  return { onHand: level?.onHand ?? 0, reserved: level?.reserved ?? 0, available: level?.available ?? 0 };
}
