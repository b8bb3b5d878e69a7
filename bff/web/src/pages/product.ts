/** One product: picture, price, stock, and "Add to cart" with a quantity. */
import { type Answer, api, ApiError, type Product, read, withSignal } from "../api.ts";
import { h } from "../dom.ts";
import { inside, load } from "../page-load.ts";
import { here, navigate, type PageContext, setTitle } from "../router.ts";
import { cartChanged, setState, state } from "../state.ts";
import { errorMessage, loading, quantityControl } from "../ui.ts";
import { categoryName, getCategories } from "./catalog.ts";

/** How many of one product a single "Add to cart" may ask for. */
const MAX_PER_ADD = 99;

/** What the stock line says: "12 in stock", "Only 2 left", "Out of stock". */
export function stockText(available: number): string {
  if (available <= 0) return "Out of stock";
  if (available <= 5) return `Only ${available} left`;
  return `${available} in stock`;
}

/** An add-to-cart started while signed out, finished after signing in. */
const PENDING_ADD = "bazaar.pendingAdd";

export function rememberPendingAdd(productId: string, quantity: number, name: string): void {
  sessionStorage.setItem(PENDING_ADD, JSON.stringify({ productId, quantity, name }));
}

export function pendingAddName(): string | undefined {
  try {
    return (JSON.parse(sessionStorage.getItem(PENDING_ADD) ?? "null") as { name?: string } | null)?.name;
  } catch {
    return undefined;
  }
}

/** Finishes a remembered add-to-cart (after signing in); returns what to tell the person. */
export async function completePendingAdd(): Promise<string | undefined> {
  const raw = sessionStorage.getItem(PENDING_ADD);
  sessionStorage.removeItem(PENDING_ADD);
  if (!raw) return undefined;
  try {
    const { productId, quantity, name } = JSON.parse(raw) as { productId: string; quantity: number; name: string };
    cartChanged((await addToCart(productId, quantity)).cart);
    return `Added ${quantity} × ${name} to your cart.`;
  } catch (err) {
    return `Could not add it to your cart: ${errorMessage(err)}`;
  }
}

/** Adds `quantity` of a product to the cart; answers the cart. */
const addToCart = (productId: string, quantity: number) => read(api.cart.items.$post({ json: { productId, quantity } }));

type ProductDetail = Answer<(typeof api.products)[":id"]["$get"]>;

export async function productPage({ root, params, signal }: PageContext): Promise<void> {
  const id = params[0]!;
  root.append(loading());
  await load({
    fetch: () => Promise.all([read(api.products[":id"].$get({ param: { id } }, withSignal(signal))), getCategories(signal)]).then(([detail]) => detail),
    place: inside(root),
    explain: (err) => {
      if (err instanceof ApiError && (err.status === 404 || (err.status === 400 && err.fields.id))) {
        setTitle("Product not found");
        return h(
          "div",
          { class: "notice empty", "data-testid": "not-found" },
          h("h1", {}, "Product not found"),
          h("p", {}, "It may have been removed."),
          h("a", { href: "/", class: "button" }, "Back to the shop"),
        );
      }
      setTitle("Product");
      return undefined;
    },
    render: (detail, place) => place(...productView(detail)),
  });
}

/** The product page once read: picture, price, stock and the add-to-cart controls. */
function productView(detail: ProductDetail): Node[] {
  const { product: p, stock } = detail;
  if (state.user && typeof detail.cartCount === "number") setState({ cartCount: detail.cartCount });
  setTitle(p.name);
  // Stock may be missing if the inventory could not answer: then the cart decides. (The BFF
  // sends { available: null } then, which counts as 0 here.)
  const available = stock ? Math.max(0, Number(stock.available)) : undefined;
  const soldOut = available === 0;
  return [
    h(
      "nav",
      { class: "crumbs", "aria-label": "Breadcrumb" },
      h("a", { href: "/" }, "All products"),
      " / ",
      h("a", { href: `/?category=${encodeURIComponent(p.categoryId)}` }, categoryName(p.categoryId)),
    ),
    h(
      "article",
      { class: "product", "data-testid": "product-page" },
      h("img", { src: p.imageUrl, alt: p.name, width: 400, height: 400 }),
      h(
        "div",
        { class: "product-info" },
        h("h1", {}, p.name),
        h("p", { class: "product-price", "data-testid": "price" }, p.price.display),
        available !== undefined &&
          h(
            "p",
            { class: `stock ${soldOut ? "out" : available <= 5 ? "low" : "in"}`, "data-testid": "stock", "data-available": available },
            stockText(available),
          ),
        h("p", { class: "product-description" }, p.description),
        ...buyControls(p, available),
        h("p", { class: "product-sku" }, `SKU ${p.sku}`),
      ),
    ),
  ];
}

/** Quantity and "Add to cart" (signed out: sign in first, then the add completes), and the result line. */
function buyControls(p: Product, available: number | undefined): HTMLElement[] {
  const soldOut = available === 0;
  const max = Math.max(1, Math.min(MAX_PER_ADD, available ?? MAX_PER_ADD));
  let quantity = 1;
  const qty = quantityControl({ value: 1, min: 1, max, label: "Quantity", testid: "quantity", onChange: (n) => (quantity = n) });
  const addButton = h("button", { type: "button", class: "button add", "data-testid": "add-to-cart", disabled: soldOut }, "Add to cart");
  const result = h("div", { class: "add-result", role: "status", "data-testid": "add-result" });
  if (soldOut) qty.setDisabled(true);
  const signInFirst = () => {
    rememberPendingAdd(p.id, quantity, p.name);
    navigate(`/signin?next=${encodeURIComponent(here())}`);
  };

  addButton.addEventListener("click", async () => {
    if (!state.user) return signInFirst();
    addButton.disabled = true;
    addButton.textContent = "Adding…";
    result.replaceChildren();
    result.className = "add-result";
    try {
      cartChanged((await addToCart(p.id, quantity)).cart);
      result.append(`Added ${quantity} to your cart. `, h("a", { href: "/cart", "data-testid": "view-cart" }, "View cart"));
      result.classList.add("ok");
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) return signInFirst();
      result.append(errorMessage(err));
      result.classList.add("bad");
    } finally {
      addButton.disabled = soldOut;
      addButton.textContent = "Add to cart";
    }
  });
  return [h("div", { class: "buy" }, h("span", { class: "buy-label", "aria-hidden": "true" }, "Qty"), qty.el, addButton), result];
}
