/**
 * Typed calls to the BFF's JSON API (the contract: errors are
 * `{ error: { code, message, fields? } }`; every POST/PATCH/PUT/DELETE carries the CSRF token
 * in `x-csrf-token`; the session lives in an httpOnly cookie, so requests are same-origin
 * with credentials).
 */

// The BFF's response shapes, declared once beside the server code that makes them
// (types only: nothing of the server is bundled).
import type {
  AdminOrderView as AdminOrder,
  CartLineView as CartLine,
  CartView as Cart,
  CategoryView as Category,
  NotificationView as Notification,
  OrderStatusName as OrderStatus,
  OrderView as Order,
  PriceView as Price,
  ProductView as Product,
  StockView as StockLevel,
  UserView as User,
} from "../../src/shape.ts";

export type { AdminOrder, Cart, CartLine, Category, Notification, Order, OrderStatus, Price, Product, StockLevel, User };

/** One line of an order. */
export type OrderItem = Order["items"][number];

export interface Session {
  user: User | null;
  csrfToken: string;
}

export interface ProductPage {
  products: Product[];
  nextPageToken: string | null;
  total: number;
}

/** The product page: the product, its stock and (signed in) the number of items in the cart. */
export interface ProductDetail {
  product: Product;
  stock?: { available: number };
  cartCount?: number;
}







export interface Card {
  number: string;
  expiryMonth: number;
  expiryYear: number;
  cvc: string;
}


export interface NotificationPage {
  notifications: Notification[];
  unreadCount: number;
  nextPageToken: string | null;
}


/** An error answered by the BFF (or a network failure: status 0), with its message for people. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly fields: Record<string, string> = {},
  ) {
    super(message);
    this.name = "ApiError";
  }
}

let csrfToken = "";

/** The CSRF token: the readable cookie when there is one (it may rotate), else what /api/session said. */
function currentCsrfToken(): string {
  const cookie = document.cookie.split("; ").find((c) => c.startsWith("bazaar_csrf="));
  return cookie ? decodeURIComponent(cookie.slice("bazaar_csrf=".length)) : csrfToken;
}

/** Called with every 401: the session is gone (expired, or signed out elsewhere). */
let onUnauthenticated: () => void = () => {};
export function setUnauthenticatedHandler(handler: () => void): void {
  onUnauthenticated = handler;
}

type Method = "GET" | "POST" | "PATCH" | "PUT" | "DELETE";

async function request<T>(method: Method, path: string, body?: unknown, signal?: AbortSignal, retried = false): Promise<T> {
  const headers: Record<string, string> = { accept: "application/json" };
  if (body !== undefined) headers["content-type"] = "application/json";
  if (method !== "GET") headers["x-csrf-token"] = currentCsrfToken();
  let res: Response;
  try {
    res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
      signal,
    });
  } catch (err) {
    if ((err as Error).name === "AbortError") throw err;
    throw new ApiError(0, "network", "Cannot reach the shop. Check your connection and try again.");
  }
  if (res.status === 204) return undefined as T;
  const json = (await res.json().catch(() => null)) as { error?: { code: string; message: string; fields?: Record<string, string> } } | null;
  if (!res.ok) {
    const code = json?.error?.code ?? "error";
    // A stale or missing CSRF token: fetch a fresh one and try once more.
    if (res.status === 403 && code === "csrf" && !retried) {
      await api.session(signal).catch(() => undefined);
      return request<T>(method, path, body, signal, true);
    }
    if (res.status === 401) onUnauthenticated();
    const fallback =
      res.status >= 500 ? "The shop is not answering right now. Please try again in a moment." : `The shop could not do that (${res.status}).`;
    throw new ApiError(res.status, code, json?.error?.message ?? fallback, json?.error?.fields);
  }
  return json as T;
}

const id = encodeURIComponent;

export const api = {
  /** The session: who is signed in, and the CSRF token for changes. */
  async session(signal?: AbortSignal): Promise<Session> {
    const session = await request<Session>("GET", "/api/session", undefined, signal);
    csrfToken = session.csrfToken;
    return session;
  },
  signUp(body: { email: string; password: string; displayName: string }) {
    return request<{ user: User }>("POST", "/api/auth/signup", body);
  },
  signIn(body: { email: string; password: string }) {
    return request<{ user: User }>("POST", "/api/auth/signin", body);
  },
  signOut() {
    return request<void>("POST", "/api/auth/signout", {});
  },

  listProducts(params: { q?: string; category?: string; pageToken?: string; pageSize?: number }, signal?: AbortSignal) {
    const qs = new URLSearchParams();
    if (params.q) qs.set("q", params.q);
    if (params.category) qs.set("category", params.category);
    if (params.pageSize) qs.set("pageSize", String(params.pageSize));
    if (params.pageToken) qs.set("pageToken", params.pageToken);
    return request<ProductPage>("GET", `/api/products?${qs}`, undefined, signal);
  },
  getProduct(productId: string, signal?: AbortSignal) {
    return request<ProductDetail>("GET", `/api/products/${id(productId)}`, undefined, signal);
  },
  listCategories(signal?: AbortSignal) {
    return request<{ categories: Category[] }>("GET", "/api/categories", undefined, signal);
  },

  getCart(signal?: AbortSignal) {
    return request<{ cart: Cart }>("GET", "/api/cart", undefined, signal);
  },
  addToCart(productId: string, quantity: number) {
    return request<{ cart: Cart }>("POST", "/api/cart/items", { productId, quantity });
  },
  setCartQuantity(productId: string, quantity: number) {
    return request<{ cart: Cart }>("PATCH", `/api/cart/items/${id(productId)}`, { quantity });
  },
  removeFromCart(productId: string) {
    return request<{ cart: Cart }>("DELETE", `/api/cart/items/${id(productId)}`);
  },

  checkout(idempotencyKey: string, card: Card) {
    return request<{ order: Order }>("POST", "/api/checkout", { idempotencyKey, card });
  },
  listOrders(pageToken?: string, signal?: AbortSignal) {
    const qs = pageToken ? `?${new URLSearchParams({ pageToken })}` : "";
    return request<{ orders: Order[]; nextPageToken: string | null }>("GET", `/api/orders${qs}`, undefined, signal);
  },
  getOrder(orderId: string, signal?: AbortSignal) {
    return request<{ order: Order }>("GET", `/api/orders/${id(orderId)}`, undefined, signal);
  },
  cancelOrder(orderId: string) {
    return request<{ order: Order }>("POST", `/api/orders/${id(orderId)}/cancel`, {});
  },

  listNotifications(pageToken?: string, signal?: AbortSignal) {
    const qs = pageToken ? `?${new URLSearchParams({ pageToken })}` : "";
    return request<NotificationPage>("GET", `/api/notifications${qs}`, undefined, signal);
  },
  markNotificationsRead(body: { ids: string[] } | { all: true }) {
    return request<{ marked: number }>("POST", "/api/notifications/read", body);
  },

  adminOrders(pageToken?: string, signal?: AbortSignal) {
    const qs = pageToken ? `?${new URLSearchParams({ pageToken })}` : "";
    return request<{ orders: AdminOrder[]; nextPageToken?: string | null }>("GET", `/api/admin/orders${qs}`, undefined, signal);
  },
  adminUpdateProduct(productId: string, patch: { name?: string; description?: string; priceMinor?: number; imageUrl?: string }) {
    return request<{ product: Product }>("PATCH", `/api/admin/products/${id(productId)}`, patch);
  },
  adminAdjustStock(productId: string, delta: number, reason: string) {
    return request<{ stock: StockLevel }>("POST", `/api/admin/stock/${id(productId)}`, { delta, reason });
  },
};
