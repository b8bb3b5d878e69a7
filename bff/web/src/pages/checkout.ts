/**
 * Checkout: what is being bought, and a test card. One idempotency key is made when the page
 * opens and sent with every attempt, so a double click or a retry after a lost answer places
 * one order.
 */
import { ApiError, api, type Cart, read, withSignal } from "../api.ts";
import { h } from "../dom.ts";
import { instead, load } from "../page-load.ts";
import { navigate, type PageContext, setTitle } from "../router.ts";
import { cartChanged } from "../state.ts";
import { emptyState, type Field, type FormError, field, formError, loading, plural, showFormError } from "../ui.ts";
import { rememberOrder } from "./order.ts";

/** After "order not confirmed yet", the waits before asking again with the same key. */
const checkAgainAfterMs = [1_000, 2_000, 4_000, 8_000];

/** A random UUID; crypto.randomUUID needs a secure context, so plain http gets the same from getRandomValues. */
export function newIdempotencyKey(): string {
  if (typeof crypto.randomUUID === "function") return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6]! & 0x0f) | 0x40;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const hex = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

const TEST_CARDS = [
  { number: "4242 4242 4242 4242", label: "pays" },
  { number: "4000 0000 0000 0002", label: "is declined" },
];

/** "4242424242424242" → "4242 4242 4242 4242". */
const groupDigits = (digits: string) => digits.replace(/(\d{4})(?=\d)/g, "$1 ");

function summary(cart: Cart): HTMLElement {
  return h(
    "aside",
    { class: "summary", "aria-label": "Order summary" },
    h("h2", {}, "Your order"),
    h(
      "ul",
      { class: "summary-lines" },
      cart.lines.map((l) =>
        h("li", {}, h("span", { class: "summary-name" }, l.name, h("span", { class: "muted" }, ` × ${l.quantity}`)), h("span", {}, l.lineTotal.display)),
      ),
    ),
    h(
      "dl",
      {},
      h("div", {}, h("dt", {}, "Shipping"), h("dd", {}, "Free")),
      h("div", { class: "total" }, h("dt", {}, "Total"), h("dd", { "data-testid": "checkout-total" }, cart.total.display)),
    ),
    h("a", { href: "/cart", class: "continue" }, "Edit cart"),
  );
}

export async function checkoutPage({ root, signal }: PageContext): Promise<void> {
  const idempotencyKey = newIdempotencyKey();
  setTitle("Checkout");
  const spinner = loading("Loading your cart…");
  root.append(h("h1", { class: "page-title" }, "Checkout"), spinner);
  await load({
    fetch: () => read(api.cart.$get(undefined, withSignal(signal))),
    place: instead(spinner),
    render: ({ cart }, place) => {
      cartChanged(cart);
      if (cart.lines.length === 0) {
        place(emptyState("checkout-empty", "Your cart is empty", "Add something to your cart before checking out.", { href: "/", label: "Browse products" }));
        return;
      }
      const lead = h("p", { class: "page-lead" }, `${plural(cart.itemCount, "item")}, ${cart.total.display}.`);
      let shownSummary = summary(cart);
      // After "prices changed": the cart as it is now, in the summary and the lead.
      const reloadCart = async (): Promise<Cart> => {
        const { cart: now } = await read(api.cart.$get(undefined, withSignal(signal)));
        cartChanged(now);
        const next = summary(now);
        shownSummary.replaceWith(next);
        shownSummary = next;
        lead.textContent = `${plural(now.itemCount, "item")}, ${now.total.display}.`;
        return now;
      };
      place(
        lead,
        h(
          "div",
          { class: "checkout", "data-testid": "checkout-page", "data-idempotency-key": idempotencyKey },
          paymentForm(cart, idempotencyKey, reloadCart, signal),
          shownSummary,
        ),
      );
    },
  });
}

/** The card fields: number (grouped in fours as typed), expiry month and year, CVC. */
function cardFields(): Record<string, Field> {
  const thisYear = new Date().getFullYear();
  const fields: Record<string, Field> = {
    number: field(
      "number",
      "Card number",
      h("input", {
        type: "text",
        inputmode: "numeric",
        autocomplete: "cc-number",
        placeholder: "4242 4242 4242 4242",
        maxlength: 23,
        required: true,
        "data-testid": "card-number",
      }),
    ),
    expiryMonth: field(
      "expiryMonth",
      "Month",
      h(
        "select",
        { autocomplete: "cc-exp-month", "data-testid": "card-exp-month" },
        Array.from({ length: 12 }, (_, i) => h("option", { value: i + 1, selected: i === 11 }, String(i + 1).padStart(2, "0"))),
      ),
    ),
    expiryYear: field(
      "expiryYear",
      "Year",
      h(
        "select",
        { autocomplete: "cc-exp-year", "data-testid": "card-exp-year" },
        Array.from({ length: 12 }, (_, i) => h("option", { value: thisYear + i, selected: i === 2 }, String(thisYear + i))),
      ),
    ),
    cvc: field(
      "cvc",
      "CVC",
      h("input", { type: "text", inputmode: "numeric", autocomplete: "cc-csc", placeholder: "123", maxlength: 4, required: true, "data-testid": "card-cvc" }),
    ),
  };
  const number = fields.number!.input as HTMLInputElement;
  number.addEventListener("input", () => {
    // Group the digits in fours as they are typed (only when typing at the end, so the caret stays put).
    if (number.selectionStart !== number.value.length) return;
    number.value = groupDigits(number.value.replace(/\D/g, "").slice(0, 19));
  });
  return fields;
}

/** The test cards, each a button that fills the form in. */
function testCardHint(fields: Record<string, Field>): HTMLElement {
  const number = fields.number!.input as HTMLInputElement;
  const cvc = fields.cvc!.input as HTMLInputElement;
  return h(
    "p",
    { class: "test-cards", id: "test-cards", "data-testid": "test-card-hint" },
    "Test cards: ",
    TEST_CARDS.flatMap((c, i) => [
      i > 0 ? ", " : "",
      h(
        "button",
        {
          type: "button",
          class: "link-button mono",
          title: `Use ${c.number}`,
          onclick: () => {
            number.value = c.number;
            if (!cvc.value) cvc.value = "123";
            fields.number!.setError(undefined);
            number.focus();
          },
        },
        c.number,
      ),
      ` ${c.label}`,
    ]),
    ". Any future expiry date and any CVC work.",
  );
}

/** The card as entered, or undefined when a field is wrong (each marked, the first focused). */
function checkedCard(fields: Record<string, Field>, general: FormError) {
  const card = {
    digits: fields.number!.input.value.replace(/\D/g, ""),
    cvc: fields.cvc!.input.value.trim(),
    month: Number(fields.expiryMonth!.input.value),
    year: Number(fields.expiryYear!.input.value),
  };
  const problems = cardProblems(card);
  for (const [k, f] of Object.entries(fields)) f.setError(problems[k]);
  const firstProblem = Object.keys(problems).find((k) => problems[k]);
  if (firstProblem) {
    general.set("Please check the highlighted fields.");
    fields[firstProblem]!.input.focus();
    return undefined;
  }
  general.set(undefined);
  return card;
}

/** What is wrong with the card as entered, per field (the BFF checks it again). */
function cardProblems(card: { digits: string; cvc: string; month: number; year: number }): Record<string, string | undefined> {
  const now = new Date();
  return {
    number: card.digits.length < 12 || card.digits.length > 19 ? "Enter the card number (12 to 19 digits)." : undefined,
    cvc: /^\d{3,4}$/.test(card.cvc) ? undefined : "Enter the 3 or 4 digits on the back of the card.",
    expiryMonth: card.year === now.getFullYear() && card.month < now.getMonth() + 1 ? "This card has expired." : undefined,
  };
}

/**
 * The payment form: checked here first, then placed with the page's idempotency key at the
 * total shown; on success, the order's page. When the prices changed meanwhile, the shopper
 * reads why, the page shows the cart as it is now, and the next attempt is at the new total.
 * When the order is not confirmed yet, the form says it is checking (a status, not an error)
 * while it asks again; it stops asking when the shopper leaves the page (`signal`).
 */
function paymentForm(shown: Cart, idempotencyKey: string, reloadCart: () => Promise<Cart>, signal: AbortSignal): HTMLFormElement {
  let cart = shown;
  const fields = cardFields();
  const general = formError();
  const checking = h("p", { class: "form-status", role: "status", "data-testid": "order-checking", hidden: true });
  const placeOrder = h("button", { type: "submit", class: "button wide", "data-testid": "place-order" }, `Place order · ${cart.total.display}`);
  const fieldset = h(
    "fieldset",
    { class: "card-fields" },
    h("legend", {}, "Payment"),
    testCardHint(fields),
    fields.number!.wrap,
    h("div", { class: "field-row" }, fields.expiryMonth!.wrap, fields.expiryYear!.wrap, fields.cvc!.wrap),
  );
  const form = h(
    "form",
    { class: "form checkout-form", novalidate: true, "data-testid": "checkout-form", "aria-label": "Payment" },
    general.el,
    checking,
    fieldset,
    placeOrder,
    h("p", { class: "form-note" }, "Your card is charged once your items are reserved. You can follow the order's status on the next page."),
  );

  let submitting = false;
  const setSubmitting = (on: boolean) => {
    submitting = on;
    fieldset.disabled = on;
    placeOrder.disabled = on;
    placeOrder.textContent = on ? "Placing order…" : `Place order · ${cart.total.display}`;
    if (on) form.setAttribute("aria-busy", "true");
    else form.removeAttribute("aria-busy");
  };
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (submitting) return;
    const card = checkedCard(fields, general);
    if (!card) return;
    setSubmitting(true);
    const json = {
      idempotencyKey,
      card: { number: card.digits, expiryMonth: card.month, expiryYear: card.year, cvc: card.cvc },
      expectedTotal: { currency: cart.total.currency, amountMinor: cart.total.amountMinor },
    };
    // "Not confirmed yet" (orders did not answer): the order may exist, so ask again with the
    // same key a few times, saying so, until it is there; the same key never orders twice.
    for (let attempt = 0; ; attempt++) {
      try {
        const { order } = await read(api.checkout.$post({ json }));
        rememberOrder(order);
        navigate(`/orders/${order.id}`, { replace: true });
        return;
      } catch (err) {
        if (signal.aborted) return;
        const unconfirmed = err instanceof ApiError && err.code === "order_unconfirmed";
        if (unconfirmed && attempt < checkAgainAfterMs.length) {
          general.set(undefined);
          checking.textContent = (err as Error).message;
          checking.hidden = false;
          placeOrder.textContent = "Checking your order…";
          await new Promise((resolve) => setTimeout(resolve, checkAgainAfterMs[attempt]));
          if (signal.aborted) return;
          continue;
        }
        checking.hidden = true;
        showFormError(err, fields, general);
        if (unconfirmed) general.set(`${(err as Error).message} Your orders page will show it.`);
        if (err instanceof ApiError && err.code === "price_changed") cart = await reloadCart().catch(() => cart);
        setSubmitting(false);
        return;
      }
    }
  });
  return form;
}
