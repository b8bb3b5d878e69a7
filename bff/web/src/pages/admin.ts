/**
 * Admin (role "admin" only): products with their name and price edited in place and stock
 * adjusted by a delta with a reason (/admin), and everyone's recent orders (/admin/orders).
 */
import { type AdminOrder, api, ApiError, type Product, read, withSignal } from "../api.ts";
import { h } from "../dom.ts";
import { inside, pager } from "../page-load.ts";
import { navigate, type PageContext, setTitle } from "../router.ts";
import { isAdmin } from "../state.ts";
import { emptyState, errorMessage, loading } from "../ui.ts";
import { orderRow } from "./orders.ts";

const PAGE_SIZE = 20;
/** How many stock reads run at once while a page of products loads. */
const STOCK_READS = 4;

/** "26.5" → 2650 (cents); undefined when it is not a price. */
export function parsePrice(text: string): number | undefined {
  const t = text.trim().replace(/^\$/, "");
  if (!/^\d{1,7}(\.\d{1,2})?$/.test(t)) return undefined;
  return Math.round(Number(t) * 100);
}

const priceText = (minor: number) => (minor / 100).toFixed(2);

function tabs(current: "products" | "orders"): HTMLElement {
  const tab = (href: string, id: typeof current, label: string) =>
    h("a", { href, class: id === current ? "tab current" : "tab", "aria-current": id === current ? "page" : undefined }, label);
  return h(
    "nav",
    { class: "tabs", "aria-label": "Admin sections" },
    tab("/admin", "products", "Products & stock"),
    tab("/admin/orders", "orders", "Recent orders"),
  );
}

function forbidden(root: HTMLElement): boolean {
  if (isAdmin()) return false;
  root.append(
    h(
      "div",
      { class: "notice empty", "data-testid": "forbidden" },
      h("h1", {}, "Admins only"),
      h("p", {}, "This page is for the shop's administrators."),
      h("a", { href: "/", class: "button" }, "Back to the shop"),
    ),
  );
  return true;
}

/** The row's status line: what the last edit or adjustment did. */
type Say = (text: string, kind?: "ok" | "bad" | "") => void;

/** One product: its name and price edited in place, its stock adjusted, one status line for both. */
function productRow(p: Product, stockQueue: (task: () => Promise<void>) => void): HTMLElement {
  const rowStatus = h("p", { class: "row-status", role: "status", "data-testid": "admin-row-status" });
  const say: Say = (text, kind = "") => {
    rowStatus.textContent = text;
    rowStatus.className = `row-status ${kind}`;
  };
  const title = h("span", { class: "admin-title" }, p.name);
  const stock = stockForm(p, say);
  stockQueue(stock.read);
  return h(
    "li",
    { class: "admin-row", "data-testid": "admin-product-row", "data-product-id": p.id },
    h("img", { src: p.imageUrl, alt: "", width: 56, height: 56, loading: "lazy" }),
    h("div", { class: "admin-row-head" }, title, h("span", { class: "muted small" }, `SKU ${p.sku}`)),
    editForm(p, title, say),
    stock.form,
    rowStatus,
  );
}

/** What an edit of name and price changes, or the problem with it (checked here before the BFF checks it again). */
function productPatch(name: string, priceMinor: number | undefined, saved: { name: string; priceMinor: number }) {
  if (!name) return { problem: "name", message: "The name cannot be empty." } as const;
  if (priceMinor === undefined) return { problem: "price", message: "The price must look like 12.50." } as const;
  const patch: { name?: string; priceMinor?: number } = {};
  if (name !== saved.name) patch.name = name;
  if (priceMinor !== saved.priceMinor) patch.priceMinor = priceMinor;
  return { patch } as const;
}

/** A refused edit: the fields the BFF names are marked, and its words (or the error) go to the status line. */
function saveFailed(err: unknown, inputs: { nameInput: HTMLInputElement; priceInput: HTMLInputElement }, say: Say): void {
  const fields = err instanceof ApiError ? err.fields : {};
  if (fields.name) inputs.nameInput.setAttribute("aria-invalid", "true");
  if (fields.priceMinor || fields.price) inputs.priceInput.setAttribute("aria-invalid", "true");
  say(
    Object.keys(fields).length
      ? Object.entries(fields)
          .map(([k, m]) => `${k}: ${m}`)
          .join(" ")
      : errorMessage(err),
    "bad",
  );
}

/** Name and price, saved when changed. */
function editForm(p: Product, title: HTMLElement, say: Say): HTMLFormElement {
  let saved = { name: p.name, priceMinor: p.price.amountMinor };
  const uid = p.id.slice(0, 8);
  const nameInput = h("input", { type: "text", id: `name-${uid}`, value: p.name, maxlength: 200, required: true, "data-testid": "admin-name-input" });
  const priceInput = h("input", {
    type: "text",
    id: `price-${uid}`,
    inputmode: "decimal",
    value: priceText(p.price.amountMinor),
    "data-testid": "admin-price-input",
    class: "price-input",
  });
  const save = h("button", { type: "submit", class: "button small", "data-testid": "admin-save", disabled: true }, "Save");
  const dirty = () => nameInput.value.trim() !== saved.name || parsePrice(priceInput.value) !== saved.priceMinor;
  const onEdit = () => {
    save.disabled = !dirty();
    nameInput.removeAttribute("aria-invalid");
    priceInput.removeAttribute("aria-invalid");
  };
  nameInput.addEventListener("input", onEdit);
  priceInput.addEventListener("input", onEdit);
  const edit = h(
    "form",
    { class: "admin-edit", novalidate: true, "aria-label": `Edit ${p.name}` },
    h("div", { class: "field grow" }, h("label", { for: nameInput.id }, "Name"), nameInput),
    h("div", { class: "field" }, h("label", { for: priceInput.id }, `Price (${p.price.currency})`), priceInput),
    save,
  );
  edit.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (!dirty()) return;
    const change = productPatch(nameInput.value.trim(), parsePrice(priceInput.value), saved);
    if (change.problem) {
      const input = change.problem === "name" ? nameInput : priceInput;
      input.setAttribute("aria-invalid", "true");
      input.focus();
      return say(change.message, "bad");
    }
    save.disabled = true;
    save.textContent = "Saving…";
    say("");
    try {
      const { product } = await read(api.admin.products[":id"].$patch({ param: { id: p.id }, json: change.patch }));
      saved = { name: product.name, priceMinor: product.price.amountMinor };
      nameInput.value = product.name;
      priceInput.value = priceText(product.price.amountMinor);
      title.textContent = product.name;
      say(`Saved: ${product.name} at ${product.price.display}.`, "ok");
    } catch (err) {
      saveFailed(err, { nameInput, priceInput }, say);
    } finally {
      save.textContent = "Save";
      save.disabled = !dirty();
    }
  });
  return edit;
}

/** Stock: what is available (read once the row is drawn) and an adjustment by a delta with a reason. */
function stockForm(p: Product, say: Say): { form: HTMLFormElement; read: () => Promise<void> } {
  const uid = p.id.slice(0, 8);
  const available = h("span", { class: "stock-now", "data-testid": "admin-stock" }, "…");
  const deltaInput = h("input", { type: "number", id: `delta-${uid}`, step: 1, placeholder: "10", "data-testid": "admin-stock-delta", class: "delta-input" });
  const reasonInput = h("input", { type: "text", id: `reason-${uid}`, maxlength: 200, placeholder: "Restock, damaged…", "data-testid": "admin-stock-reason" });
  const apply = h("button", { type: "submit", class: "button small secondary", "data-testid": "admin-stock-apply" }, "Adjust");
  const form = h(
    "form",
    { class: "admin-stock", novalidate: true, "aria-label": `Stock of ${p.name}` },
    h("p", { class: "stock-line" }, "Available ", available),
    h("div", { class: "field" }, h("label", { for: deltaInput.id }, "Change by"), deltaInput),
    h("div", { class: "field grow" }, h("label", { for: reasonInput.id }, "Reason"), reasonInput),
    apply,
  );
  const invalid = (input: HTMLInputElement, message: string) => {
    input.setAttribute("aria-invalid", "true");
    input.focus();
    say(message, "bad");
  };
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const delta = Number(deltaInput.value);
    const reason = reasonInput.value.trim();
    if (!deltaInput.value || !Number.isInteger(delta) || delta === 0) return invalid(deltaInput, "Enter a whole number other than 0, e.g. 10 or -2.");
    if (!reason) return invalid(reasonInput, "Say why the stock changes.");
    deltaInput.removeAttribute("aria-invalid");
    reasonInput.removeAttribute("aria-invalid");
    apply.disabled = true;
    apply.textContent = "Adjusting…";
    say("");
    try {
      const { stock: level } = await read(api.admin.stock[":productId"].$post({ param: { productId: p.id }, json: { delta, reason } }));
      available.textContent = String(level.available);
      deltaInput.value = "";
      reasonInput.value = "";
      say(`Stock ${delta > 0 ? "+" : ""}${delta}: ${level.onHand} on hand, ${level.reserved} reserved, ${level.available} available.`, "ok");
    } catch (err) {
      say(errorMessage(err), "bad");
    } finally {
      apply.disabled = false;
      apply.textContent = "Adjust";
    }
  });
  const readStock = async () => {
    try {
      const { stock: s } = await read(api.products[":id"].$get({ param: { id: p.id } }));
      if (available.textContent === "…") available.textContent = s ? String(s.available) : "?";
    } catch {
      if (available.textContent === "…") available.textContent = "?";
    }
  };
  return { form, read: readStock };
}

/** Runs tasks `limit` at a time (until `signal` aborts), so a page of products does not fire 20 stock reads at once. */
function taskPool(limit: number, signal: AbortSignal): (task: () => Promise<void>) => void {
  const queue: (() => Promise<void>)[] = [];
  let running = 0;
  const pump = () => {
    while (running < limit && queue.length && !signal.aborted) {
      const task = queue.shift()!;
      running++;
      void task().finally(() => {
        running--;
        pump();
      });
    }
  };
  return (task) => {
    queue.push(task);
    pump();
  };
}

function productFilter(q: string): HTMLFormElement {
  const search = h("input", { type: "search", id: "admin-q", name: "q", value: q, placeholder: "Filter by name", maxlength: 200 });
  const filter = h(
    "form",
    { class: "admin-filter", role: "search", action: "/admin" },
    h("label", { for: "admin-q", class: "visually-hidden" }, "Filter products"),
    search,
    h("button", { type: "submit", class: "button secondary small" }, "Filter"),
  );
  filter.addEventListener("submit", (e) => {
    e.preventDefault();
    const value = search.value.trim();
    navigate(value ? `/admin?${new URLSearchParams({ q: value })}` : "/admin", { focus: false });
  });
  return filter;
}

async function productsSection(root: HTMLElement, q: string, signal: AbortSignal): Promise<void> {
  const list = h("ul", { class: "admin-list", "aria-label": "Products" });
  const status = h("p", { class: "results-status", "aria-live": "polite" }, "Loading products…");
  const more = h("div", { class: "more" });
  root.append(productFilter(q), status, list, more);
  const stockQueue = taskPool(STOCK_READS, signal);
  await pager({
    more,
    fetch: (pageToken) => read(api.products.$get({ query: { q: q || undefined, pageSize: String(PAGE_SIZE), pageToken } }, withSignal(signal))),
    failed: () => {
      status.textContent = "";
    },
    render: (page) => {
      list.append(...page.products.map((p) => productRow(p, stockQueue)));
      status.textContent = page.total
        ? `${page.total} product${page.total === 1 ? "" : "s"}${list.children.length < page.total ? `, showing ${list.children.length}` : ""}`
        : "";
      if (page.total === 0) list.replaceWith(emptyState("empty", "No products found", q ? `Nothing matches “${q}”.` : "The catalog is empty."));
    },
  }).load();
}

async function ordersSection(root: HTMLElement, signal: AbortSignal): Promise<void> {
  const list = h("ul", { class: "order-list", "aria-label": "Recent orders", "data-testid": "admin-orders" });
  const body = h("div", {}, loading("Loading recent orders…"));
  const more = h("div", { class: "more" });
  const refresh = h("button", { type: "button", class: "button secondary small", "data-testid": "admin-orders-refresh" }, "Refresh");
  root.append(h("div", { class: "title-row" }, h("h2", {}, "Recent orders"), refresh), body, more);
  const row = (o: AdminOrder) => {
    const el = orderRow(o, "admin-order-row", undefined);
    if (o.userId) el.querySelector(".order-row-main .muted")?.append(` · customer ${o.userId.slice(0, 8)}`);
    return el;
  };
  const pages = pager({
    more,
    busy: (busy) => (refresh.disabled = busy),
    fetch: (pageToken) => read(api.admin.orders.$get({ query: { pageToken } }, withSignal(signal))),
    // A failed first page shows in place of the list; a failed further page below it.
    failurePlace: (pageToken) => inside(pageToken ? more : body),
    render: ({ orders }, pageToken) => {
      if (pageToken) list.append(...orders.map(row));
      else list.replaceChildren(...orders.map(row));
      body.replaceChildren(list.children.length ? list : emptyState("admin-orders-empty", "No orders yet", "Orders from every customer show up here."));
    },
  });
  refresh.addEventListener("click", () => void pages.load());
  await pages.load();
}

export async function adminPage({ root, params, query, signal }: PageContext): Promise<void> {
  const section = params[0] === "orders" ? "orders" : "products";
  setTitle(section === "orders" ? "Admin · Recent orders" : "Admin · Products");
  if (forbidden(root)) return;
  const page = h("div", { class: "admin", "data-testid": "admin-page" }, h("h1", { class: "page-title" }, "Admin"), tabs(section));
  root.append(page);
  if (section === "orders") await ordersSection(page, signal);
  else await productsSection(page, query.get("q") ?? "", signal);
}
