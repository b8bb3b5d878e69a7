/** The catalog: category chips, search results and a grid of product cards, paged with "Show more". */
import { api, type Category, type Product } from "../api.ts";
import { h } from "../dom.ts";
import { type PageContext, setTitle } from "../router.ts";
import { errorBox } from "../ui.ts";

let categories: Category[] = [];

/** The categories, read once (an outage leaves the list empty and is retried next time). */
export async function getCategories(signal?: AbortSignal): Promise<Category[]> {
  if (categories.length === 0) categories = await api.listCategories(signal).then((r) => r.categories, () => []);
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
      h("span", { class: "card-body" },
        h("span", { class: "card-category" }, categoryName(p.categoryId)),
        h("span", { class: "card-name" }, p.name),
        h("span", { class: "card-price" }, p.price.display),
      ),
    ),
  );
}

export async function catalogPage({ root, query, signal }: PageContext): Promise<void> {
  const q = query.get("q") ?? "";
  const category = query.get("category") ?? "";
  searchInput().value = q;
  const all = await getCategories(signal);
  const current = all.find((c) => c.id === category);
  setTitle(q ? `“${q}”` : (current?.name ?? ""));

  const chips = h(
    "nav",
    { class: "chips", "aria-label": "Categories" },
    [{ id: "", name: "All", productCount: all.reduce((n, c) => n + c.productCount, 0) }, ...all].map((c) => {
      const qs = new URLSearchParams();
      if (q) qs.set("q", q);
      if (c.id) qs.set("category", c.id);
      const isCurrent = c.id === category;
      return h("a", { href: `/?${qs}`, class: isCurrent ? "chip current" : "chip", "data-testid": "category-chip", "aria-current": isCurrent ? "page" : undefined }, c.name);
    }),
  );
  const heading = h("h1", { class: "visually-hidden" }, q ? `Search results for “${q}”` : current ? current.name : "All products");
  const status = h("p", { class: "results-status", "aria-live": "polite", id: "results-status" }, "Loading products…");
  const grid = h("ul", { class: "grid", "aria-busy": "true", "aria-labelledby": "results-status" });
  const more = h("div", { class: "more" });
  root.append(heading, chips, status, grid, more);

  const loadPage = async (pageToken?: string) => {
    more.replaceChildren();
    grid.setAttribute("aria-busy", "true");
    try {
      const page = await api.listProducts({ q, category, pageToken }, signal);
      const cards = page.products.map(productCard);
      grid.append(...cards);
      // After "Show more", keyboard focus continues at the first new product.
      if (pageToken) cards[0]?.querySelector("a")?.focus();
      const shown = grid.children.length;
      status.textContent =
        page.total === 0
          ? ""
          : `${page.total} product${page.total === 1 ? "" : "s"}${q ? ` matching “${q}”` : ""}${shown < page.total ? `, showing ${shown}` : ""}`;
      if (page.total === 0) {
        grid.replaceWith(
          h("div", { class: "notice empty", "data-testid": "empty" },
            h("p", {}, q ? `No products match “${q}”${category ? " in this category" : ""}.` : "No products here yet."),
            h("a", { href: "/", class: "button" }, "See all products"),
          ),
        );
      }
      if (page.nextPageToken) {
        const token = page.nextPageToken;
        more.append(h("button", { type: "button", class: "button", "data-testid": "show-more", onclick: () => void loadPage(token) }, "Show more"));
      }
    } catch (err) {
      if ((err as Error).name === "AbortError") return;
      status.textContent = "";
      more.replaceChildren(errorBox(err, () => void loadPage(pageToken)));
    } finally {
      grid.setAttribute("aria-busy", "false");
    }
  };
  await loadPage();
}
