/**
 * The cart: lines with quantities to change or remove, the total, and the way to checkout; and,
 * when the shop lost the cart (see cart-copy.ts), what was in it, to put back with one click.
 */
import { ApiError, api, type Cart, type CartLine, read, withSignal } from "../api.ts";
import { forgetLost, lostLines, type RememberedLine } from "../cart-copy.ts";
import { h } from "../dom.ts";
import { instead, load, type Place } from "../page-load.ts";
import { type PageContext, setTitle } from "../router.ts";
import { cartChanged, state } from "../state.ts";
import { emptyState, errorMessage, loading, plural, quantityControl } from "../ui.ts";

/** The most of one product a cart line may hold. */
const MAX_LINE = 99;

export async function cartPage({ root, signal }: PageContext): Promise<void> {
  setTitle("Your cart");
  const spinner = loading("Loading your cart…");
  root.append(h("h1", { class: "page-title" }, "Your cart"), spinner);
  await load({
    fetch: () => read(api.cart.$get(undefined, withSignal(signal))),
    place: instead(spinner),
    render: ({ cart }, place) => showCart(cart, place),
  });
}

/** The cart's lines and summary, redrawn from every answer of a change. */
function showCart(cart: Cart, place: Place): void {
  cartChanged(cart);
  const body = h("div", { class: "cart", "data-testid": "cart-page" });
  const status = h("p", { class: "visually-hidden", role: "status" });
  place(body, status);

  const draw = (next: Cart, focusProduct?: string) => {
    cartChanged(next);
    const lost = state.user ? lostLines(state.user.id) : [];
    const notices = lost.length ? [lostNotice(lost, next, draw)] : [];
    if (next.lines.length === 0) {
      body.replaceChildren(
        ...notices,
        emptyState("cart-empty", "Your cart is empty", "Find something you like in the shop.", { href: "/", label: "Browse products" }),
      );
      return;
    }
    const lines = h(
      "ul",
      { class: "cart-lines", "aria-label": "Items in your cart" },
      next.lines.map((line) => cartLine(line, { body, status, draw })),
    );
    body.replaceChildren(...notices, lines, summary(next));
    if (focusProduct) (body.querySelector(`[data-product="${CSS.escape(focusProduct)}"] input`) as HTMLElement | null)?.focus();
  };

  draw(cart);
  if (cart.lines.length) status.textContent = `${plural(cart.itemCount, "item")} in your cart.`;
}

/** Answers that will not change if the add is tried again: the product is gone, out of limits, or the request is refused. */
const finalRefusal = (err: unknown) => err instanceof ApiError && err.status >= 400 && err.status < 500 && err.status !== 401 && err.status !== 429;

/**
 * What a lost cart held, offered back: "put them back" adds each line again through the API
 * (so today's prices, stock and limits apply); "no thanks" forgets them. A line the shop
 * refuses for good (the product gone, the line over its limit) is named and forgotten; one
 * that failed for now (the shop down, the session ended) stays offered.
 */
function lostNotice(lost: RememberedLine[], current: Cart, draw: (next: Cart) => void): HTMLElement {
  const userId = state.user!.id;
  const units = lost.reduce((n, l) => n + l.quantity, 0);
  const restore = h("button", { type: "button", class: "button", "data-testid": "cart-restore" }, "Put them back in my cart");
  const dismiss = h("button", { type: "button", class: "link-button", "data-testid": "cart-lost-dismiss" }, "No thanks");
  restore.addEventListener("click", async () => {
    restore.disabled = dismiss.disabled = true;
    let cart = current;
    let restored = 0;
    const settled: string[] = [];
    const problems: string[] = [];
    for (const line of lost) {
      try {
        cart = (await read(api.cart.items.$post({ json: { productId: line.productId, quantity: line.quantity } }))).cart;
        restored += line.quantity;
        settled.push(line.productId);
      } catch (err) {
        if (finalRefusal(err)) settled.push(line.productId);
        problems.push(`${line.name}: ${errorMessage(err)}`);
      }
    }
    forgetLost(userId, settled);
    draw(cart);
    const note = problems.length
      ? `Put back ${plural(restored, "item")}; some could not be put back. ${problems.join(" ")}`
      : `Put back ${plural(restored, "item")} in your cart.`;
    document
      .querySelector("[data-testid=cart-page]")
      ?.prepend(h("p", { class: problems.length ? "notice error" : "flash", role: "status", "data-testid": "cart-restored", "data-units": restored }, note));
  });
  dismiss.addEventListener("click", () => {
    forgetLost(
      userId,
      lost.map((l) => l.productId),
    );
    draw(current);
  });
  return h(
    "section",
    { class: "notice error lost-cart", role: "alert", "data-testid": "cart-lost", "data-lines": lost.length, "aria-labelledby": "cart-lost-title" },
    h("h2", { id: "cart-lost-title" }, "Items went missing from your cart"),
    h("p", {}, `The shop lost ${plural(units, "item")} you had added to your cart. Sorry! Put them back, at today's prices?`),
    h(
      "ul",
      { class: "lost-lines" },
      lost.map((l) => h("li", { "data-testid": "cart-lost-line", "data-product": l.productId }, `${l.name} × ${l.quantity}`)),
    ),
    h("p", { class: "actions" }, restore, dismiss),
  );
}

function summary(cart: Cart): HTMLElement {
  return h(
    "aside",
    { class: "summary", "aria-label": "Order summary" },
    h("h2", {}, "Summary"),
    h(
      "dl",
      {},
      h("div", {}, h("dt", {}, "Items"), h("dd", { "data-testid": "cart-item-count" }, String(cart.itemCount))),
      h("div", {}, h("dt", {}, "Shipping"), h("dd", {}, "Free")),
      h("div", { class: "total" }, h("dt", {}, "Total"), h("dd", { "data-testid": "cart-total" }, cart.total.display)),
    ),
    h("a", { href: "/checkout", class: "button wide", "data-testid": "checkout" }, "Checkout"),
    h("a", { href: "/", class: "continue" }, "Continue shopping"),
  );
}

/** One line: its quantity changed or the line removed in place; the cart redraws from the answer. */
function cartLine(line: CartLine, cart: { body: HTMLElement; status: HTMLElement; draw: (next: Cart, focusProduct?: string) => void }): HTMLElement {
  const error = h("p", { class: "line-error", role: "alert" });
  const remove = h("button", { type: "button", class: "link-button", "data-testid": "cart-remove", "aria-label": `Remove ${line.name}` }, "Remove");
  const change = async (quantity: number, refocus: boolean) => {
    li.setAttribute("aria-busy", "true");
    qty.setDisabled(true);
    remove.disabled = true;
    error.textContent = "";
    try {
      const param = { productId: line.productId };
      const next = await read(
        quantity === 0 ? api.cart.items[":productId"].$delete({ param }) : api.cart.items[":productId"].$patch({ param, json: { quantity } }),
      );
      cart.status.textContent = quantity === 0 ? `Removed ${line.name}.` : `${line.name}: quantity ${quantity}.`;
      cart.draw(next.cart, refocus ? line.productId : undefined);
      if (quantity === 0) (cart.body.querySelector("input, a.button") as HTMLElement | null)?.focus();
    } catch (err) {
      li.removeAttribute("aria-busy");
      qty.setDisabled(false);
      qty.set(line.quantity);
      remove.disabled = false;
      error.textContent = errorMessage(err);
    }
  };
  const qty = quantityControl({
    value: line.quantity,
    min: 1,
    max: Math.max(MAX_LINE, line.quantity),
    label: `Quantity of ${line.name}`,
    testid: "cart-qty",
    onChange: (n) => void change(n, true),
  });
  remove.addEventListener("click", () => void change(0, false));
  const li = h(
    "li",
    { class: "cart-line", "data-testid": "cart-line", "data-product": line.productId },
    h(
      "a",
      { href: `/products/${line.productId}`, class: "line-image", tabindex: -1, "aria-hidden": "true" },
      h("img", { src: line.imageUrl, alt: "", width: 96, height: 96 }),
    ),
    h(
      "div",
      { class: "line-main" },
      h("a", { href: `/products/${line.productId}`, class: "line-name" }, line.name),
      h("p", { class: "line-unit" }, `${line.unitPrice.display} each`),
      h("div", { class: "line-controls" }, qty.el, remove),
      error,
    ),
    h("p", { class: "line-total", "data-testid": "cart-line-total" }, line.lineTotal.display),
  );
  return li;
}
