import "./styles.css";
import { api, ApiError, type Category, type Product } from "./api.ts";
import { h } from "./dom.ts";

/**
 * Bazaar's storefront: the catalog with search and categories, and a page per product.
 * Routes are real URLs (/?q=…&category=…, /products/:id), so links can be shared and the
 * back button works.
 */
const main = document.getElementById("main") as HTMLElement;
const searchForm = document.getElementById("search-form") as HTMLFormElement;
const searchInput = document.getElementById("search") as HTMLInputElement;

let categories: Category[] = [];
let inFlight: AbortController | undefined;

function navigate(url: string, replace = false): void {
  if (replace) history.replaceState(null, "", url);
  else history.pushState(null, "", url);
  void render();
}

function link(href: string, attrs: Record<string, string>, ...children: (Node | string)[]): HTMLAnchorElement {
  return h("a", { href, ...attrs, onclick: ((e: MouseEvent) => {
    if (e.metaKey || e.ctrlKey || e.shiftKey || e.button !== 0) return;
    e.preventDefault();
    navigate(href);
  }) as EventListener }, ...children);
}

function errorBox(err: unknown, retry: () => void): HTMLElement {
  const message = err instanceof ApiError ? err.message : "Something went wrong. Please try again.";
  return h("div", { class: "notice error", role: "alert" }, h("p", {}, message), h("button", { type: "button", onclick: retry }, "Try again"));
}

function productCard(p: Product): HTMLElement {
  const category = categories.find((c) => c.id === p.categoryId);
  return h(
    "li",
    { class: "card" },
    link(
      `/products/${p.id}`,
      { class: "card-link", "data-testid": "product-card" },
      h("img", { src: p.imageUrl, alt: "", width: 400, height: 400, loading: "lazy" }),
      h("span", { class: "card-body" },
        h("span", { class: "card-category" }, category?.name ?? p.categoryId),
        h("span", { class: "card-name" }, p.name),
        h("span", { class: "card-price" }, p.price.display),
      ),
    ),
  );
}

async function renderCatalog(params: URLSearchParams, signal: AbortSignal): Promise<void> {
  const q = params.get("q") ?? "";
  const category = params.get("category") ?? "";
  searchInput.value = q;
  document.title = q ? `“${q}” · Bazaar` : "Bazaar";

  const chips = h(
    "nav",
    { class: "chips", "aria-label": "Categories" },
    [{ id: "", name: "All", productCount: categories.reduce((n, c) => n + c.productCount, 0) }, ...categories].map((c) => {
      const qs = new URLSearchParams();
      if (q) qs.set("q", q);
      if (c.id) qs.set("category", c.id);
      const current = c.id === category;
      return link(`/?${qs}`, { class: current ? "chip current" : "chip", ...(current ? { "aria-current": "page" } : {}) }, c.name);
    }),
  );
  const status = h("p", { class: "results-status", "aria-live": "polite", id: "results-status" }, "Loading products…");
  const grid = h("ul", { class: "grid", "aria-busy": "true", "aria-labelledby": "results-status" });
  const more = h("div", { class: "more" });
  main.replaceChildren(chips, status, grid, more);

  const loadPage = async (pageToken?: string) => {
    more.replaceChildren();
    grid.setAttribute("aria-busy", "true");
    try {
      const page = await api.listProducts({ q, category, pageToken }, signal);
      grid.append(...page.products.map(productCard));
      const shown = grid.children.length;
      status.textContent =
        page.total === 0
          ? ""
          : `${page.total} product${page.total === 1 ? "" : "s"}${q ? ` matching “${q}”` : ""}${shown < page.total ? `, showing ${shown}` : ""}`;
      if (page.total === 0) {
        grid.replaceWith(
          h("div", { class: "notice empty", "data-testid": "empty" },
            h("p", {}, q ? `No products match “${q}”${category ? " in this category" : ""}.` : "No products here yet."),
            link("/", { class: "button" }, "See all products"),
          ),
        );
      }
      if (page.nextPageToken) {
        const token = page.nextPageToken;
        more.append(h("button", { type: "button", class: "button", onclick: () => void loadPage(token) }, "Show more"));
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

async function renderProduct(id: string, signal: AbortSignal): Promise<void> {
  main.replaceChildren(h("p", { class: "results-status" }, "Loading…"));
  try {
    const { product: p } = await api.getProduct(id, signal);
    const category = categories.find((c) => c.id === p.categoryId);
    document.title = `${p.name} · Bazaar`;
    main.replaceChildren(
      h("nav", { class: "crumbs", "aria-label": "Breadcrumb" },
        link("/", {}, "All products"), " / ",
        link(`/?category=${encodeURIComponent(p.categoryId)}`, {}, category?.name ?? p.categoryId),
      ),
      h("article", { class: "product", "data-testid": "product-page" },
        h("img", { src: p.imageUrl, alt: p.name, width: 400, height: 400 }),
        h("div", { class: "product-info" },
          h("h1", {}, p.name),
          h("p", { class: "product-price", "data-testid": "price" }, p.price.display),
          h("p", { class: "product-description" }, p.description),
          h("p", { class: "product-sku" }, `SKU ${p.sku}`),
        ),
      ),
    );
  } catch (err) {
    if ((err as Error).name === "AbortError") return;
    if (err instanceof ApiError && err.status === 404) {
      main.replaceChildren(h("div", { class: "notice empty" }, h("h1", {}, "Product not found"), h("p", {}, "It may have been removed."), link("/", { class: "button" }, "Back to the shop")));
      return;
    }
    main.replaceChildren(errorBox(err, () => void render()));
  }
}

async function render(): Promise<void> {
  inFlight?.abort();
  const controller = new AbortController();
  inFlight = controller;
  if (categories.length === 0) {
    categories = await api.listCategories(controller.signal).then((r) => r.categories, () => []);
  }
  const product = /^\/products\/([\w-]+)$/.exec(location.pathname);
  if (product?.[1]) await renderProduct(product[1], controller.signal);
  else await renderCatalog(new URLSearchParams(location.search), controller.signal);
}

searchForm.addEventListener("submit", (e) => {
  e.preventDefault();
  const qs = new URLSearchParams(location.pathname === "/" ? location.search : "");
  const q = searchInput.value.trim();
  if (q) qs.set("q", q);
  else qs.delete("q");
  navigate(`/?${qs}`);
});
document.querySelector("a[data-link]")?.addEventListener("click", (e) => {
  e.preventDefault();
  navigate("/");
});
window.addEventListener("popstate", () => void render());
void render();
