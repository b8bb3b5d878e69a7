/** The catalog: category chips, search results and a grid of product cards, paged with "Show more". */
import { type Answer, api, type Category, type Product, read, withSignal } from "../api.ts";
import { h } from "../dom.ts";
import { pager } from "../page-load.ts";
import { type PageContext, setTitle } from "../router.ts";

let categories: Category[] = [];

/** The categories, read once (an outage leaves the list empty and is retried next time). */
export async function getCategories(signal?: AbortSignal): Promise<Category[]> {
  if (categories.length === 0)
    categories = await read(api.categories.$get(undefined, withSignal(signal))).then(
      (r) => r.categories,
      () => [],
    );
  return categories;
}

export const categoryName = (id: string): string => categories.find((c) => c.id === id)?.name ?? id;

export function searchInput(): HTMLInputElement {
  return document.getElementById("search") as HTMLInputElement;
}

function productCard(p: Product): HTMLElement {
  return h(
    "li",
    { class: "card" },
    h(
      "a",
      { href: `/products/${p.id}`, class: "card-link", "data-testid": "product-card" },
      h("img", { src: p.imageUrl, alt: "", width: 400, height: 400, loading: "lazy" }),
      h(
        "span",
        { class: "card-body" },
        h("span", { class: "card-category" }, categoryName(p.categoryId)),
        h("span", { class: "card-name" }, p.name),
        h("span", { class: "card-price" }, p.price.display),
      ),
    ),
  );
}

type ProductPage = Answer<typeof api.products.$get>;

/** The category chips: "All" and each category, keeping the search. */
function categoryChips(all: Category[], q: string, category: string): HTMLElement {
  return h(
    "nav",
    { class: "chips", "aria-label": "Categories" },
    [{ id: "", name: "All", productCount: all.reduce((n, c) => n + c.productCount, 0) }, ...all].map((c) => {
      const qs = new URLSearchParams();
      if (q) qs.set("q", q);
      if (c.id) qs.set("category", c.id);
      const isCurrent = c.id === category;
      return h(
        "a",
        { href: `/?${qs}`, class: isCurrent ? "chip current" : "chip", "data-testid": "category-chip", "aria-current": isCurrent ? "page" : undefined },
        c.name,
      );
    }),
  );
}

/** Adds a page of results to the grid, with the count above it or, for none, the empty state. */
function showResults(page: ProductPage, first: boolean, parts: { grid: HTMLElement; status: HTMLElement; q: string; category: string }): void {
  const { grid, status, q, category } = parts;
  const cards = page.products.map(productCard);
  grid.append(...cards);
  // After "Show more", keyboard focus continues at the first new product.
  if (!first) cards[0]?.querySelector("a")?.focus();
  const shown = grid.children.length;
  status.textContent =
    page.total === 0
      ? ""
      : `${page.total} product${page.total === 1 ? "" : "s"}${q ? ` matching “${q}”` : ""}${shown < page.total ? `, showing ${shown}` : ""}`;
  if (page.total === 0) {
    grid.replaceWith(
      h(
        "div",
        { class: "notice empty", "data-testid": "empty" },
        h("p", {}, q ? `No products match “${q}”${category ? " in this category" : ""}.` : "No products here yet."),
        h("a", { href: "/", class: "button" }, "See all products"),
      ),
    );
  }
}

export async function catalogPage({ root, query, signal }: PageContext): Promise<void> {
  const q = query.get("q") ?? "";
  const category = query.get("category") ?? "";
  searchInput().value = q;
  const all = await getCategories(signal);
  const current = all.find((c) => c.id === category);
  setTitle(q ? `“${q}”` : (current?.name ?? ""));

  const heading = h("h1", { class: "visually-hidden" }, q ? `Search results for “${q}”` : current ? current.name : "All products");
  const status = h("p", { class: "results-status", "aria-live": "polite", id: "results-status" }, "Loading products…");
  const grid = h("ul", { class: "grid", "aria-busy": "true", "aria-labelledby": "results-status" });
  const more = h("div", { class: "more" });
  root.append(heading, categoryChips(all, q, category), status, grid, more);

  await pager({
    more,
    spinner: false,
    busy: (busy) => grid.setAttribute("aria-busy", String(busy)),
    // Empty filters stay out of the URL: the BFF checks any category it is sent.
    fetch: (pageToken) => read(api.products.$get({ query: { q: q || undefined, category: category || undefined, pageToken } }, withSignal(signal))),
    render: (page, pageToken) => showResults(page, !pageToken, { grid, status, q, category }),
    failed: () => {
      status.textContent = "";
    },
  }).load();
}
