/** Typed calls to the BFF's JSON API. */

// The BFF's response shapes, shared with the server code (types only: nothing is bundled).
import type { CategoryView as Category, PriceView as Price, ProductView as Product } from "../../src/shape.ts";

export type { Category, Price, Product };

export interface ProductPage {
  products: Product[];
  nextPageToken: string | null;
  total: number;
}

/** An error answered by the BFF, with its message for people. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly fields: Record<string, string> = {},
  ) {
    super(message);
  }
}

async function getJson<T>(path: string, signal?: AbortSignal): Promise<T> {
  let res: Response;
  try {
    res = await fetch(path, { headers: { accept: "application/json" }, signal });
  } catch (err) {
    if ((err as Error).name === "AbortError") throw err;
    throw new ApiError(0, "network", "Cannot reach the shop. Check your connection and try again.");
  }
  const body = (await res.json().catch(() => null)) as { error?: { code: string; message: string; fields?: Record<string, string> } } | null;
  if (!res.ok) {
    throw new ApiError(res.status, body?.error?.code ?? "error", body?.error?.message ?? `The shop answered ${res.status}.`, body?.error?.fields);
  }
  return body as T;
}

export const api = {
  listProducts(params: { q?: string; category?: string; pageToken?: string }, signal?: AbortSignal) {
    const qs = new URLSearchParams();
    if (params.q) qs.set("q", params.q);
    if (params.category) qs.set("category", params.category);
    if (params.pageToken) qs.set("pageToken", params.pageToken);
    return getJson<ProductPage>(`/api/products?${qs}`, signal);
  },
  getProduct(id: string, signal?: AbortSignal) {
    return getJson<{ product: Product }>(`/api/products/${encodeURIComponent(id)}`, signal);
  },
  listCategories(signal?: AbortSignal) {
    return getJson<{ categories: Category[] }>("/api/categories", signal);
  },
};
