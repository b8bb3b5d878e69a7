/** Small pieces every page uses: loading, errors, empty states, badges, form fields. */
import { ApiError, type OrderStatus } from "./api.ts";
import { h } from "./dom.ts";
import { here, navigate } from "./router.ts";

/** A spinner with a sentence, announced politely. */
export function loading(text = "Loading…"): HTMLElement {
  return h("div", { class: "loading", role: "status", "data-testid": "loading" }, h("span", { class: "spinner", "aria-hidden": "true" }), text);
}

/** The message to show for a failed call. */
export function errorMessage(err: unknown): string {
  return err instanceof ApiError ? err.message : "Something went wrong. Please try again.";
}

/**
 * A failure with a "Try again" button. A 401 means the session is gone: the person is sent
 * to sign in and brought back here.
 */
export function errorBox(err: unknown, retry: () => void): HTMLElement {
  if (err instanceof ApiError && err.status === 401) {
    queueMicrotask(() => navigate(`/signin?next=${encodeURIComponent(here())}`, { replace: true }));
    return loading("Your session has ended. Taking you to sign in…");
  }
  return h(
    "div",
    { class: "notice error", role: "alert", "data-testid": "error" },
    h("p", {}, errorMessage(err)),
    h("button", { type: "button", onclick: retry, "data-testid": "retry" }, "Try again"),
  );
}

/** Nothing to show, with a way onward. */
export function emptyState(testid: string, title: string, text: string, action?: { href: string; label: string }): HTMLElement {
  return h(
    "div",
    { class: "notice empty", "data-testid": testid },
    h("h2", {}, title),
    h("p", {}, text),
    action && h("a", { href: action.href, class: "button" }, action.label),
  );
}

const statusText: Record<OrderStatus, string> = { PENDING: "Pending", CONFIRMED: "Confirmed", CANCELLED: "Cancelled" };

/** An order's status as a coloured badge; PENDING spins. `data-status` holds the raw value. */
export function statusBadge(status: OrderStatus, testid?: string): HTMLElement {
  return h(
    "span",
    { class: `badge status-${status.toLowerCase()}`, "data-status": status, "data-testid": testid },
    status === "PENDING" && h("span", { class: "spinner small", "aria-hidden": "true" }),
    statusText[status] ?? status,
  );
}

const dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
export function formatDate(iso: string | null | undefined): string {
  if (!iso) return "";
  const date = new Date(iso);
  // The BFF sends the epoch for a missing time.
  return Number.isNaN(date.getTime()) || date.getTime() === 0 ? "" : dateFormat.format(date);
}

/** "#3F2A9C1B": the first part of an order id, enough for people. */
export const shortId = (id: string): string => `#${id.replace(/-/g, "").slice(0, 8).toUpperCase()}`;

export const plural = (n: number, one: string, many = `${one}s`): string => `${n} ${n === 1 ? one : many}`;

/** A labelled input with its error message next to it. */
export interface Field {
  wrap: HTMLElement;
  input: HTMLInputElement | HTMLSelectElement;
  setError(message: string | undefined): void;
}

export function field(name: string, label: string, input: HTMLInputElement | HTMLSelectElement, hint?: string | Node): Field {
  const id = `f-${name}`;
  input.id = id;
  input.name = name;
  const error = h("p", { class: "field-error", id: `${id}-error`, "data-testid": `error-${name}`, hidden: true });
  const hintEl = hint ? h("p", { class: "field-hint", id: `${id}-hint` }, hint) : null;
  const describedBy = () => [hintEl?.id, error.hidden ? undefined : error.id].filter(Boolean).join(" ");
  if (hintEl) input.setAttribute("aria-describedby", describedBy());
  const wrap = h("div", { class: "field" }, h("label", { for: id }, label), input, hintEl, error);
  return {
    wrap,
    input,
    setError(message) {
      // The API says "must be …": start it with a capital, as a sentence.
      error.textContent = message ? message.charAt(0).toUpperCase() + message.slice(1) : "";
      error.hidden = !message;
      if (message) input.setAttribute("aria-invalid", "true");
      else input.removeAttribute("aria-invalid");
      const ids = describedBy();
      if (ids) input.setAttribute("aria-describedby", ids);
      else input.removeAttribute("aria-describedby");
    },
  };
}

/** The general error above a form. */
export interface FormError {
  el: HTMLElement;
  set(message: string | undefined): void;
}

/** The general error above a form (role=alert so it is read out when it appears). */
export function formError(): FormError {
  const el = h("div", { class: "form-error", role: "alert", "data-testid": "form-error", hidden: true });
  return {
    el,
    set(message) {
      el.textContent = message ?? "";
      el.hidden = !message;
    },
  };
}

/**
 * Shows an API error on a form: each `fields` entry next to its field (keys may be dotted,
 * e.g. "card.number"), the rest above the form. Focuses the first field in error.
 */
export function showFormError(err: unknown, fields: Record<string, Field>, general: { set(message: string | undefined): void }): void {
  for (const f of Object.values(fields)) f.setError(undefined);
  const apiFields = err instanceof ApiError ? err.fields : {};
  const unplaced: string[] = [];
  let first: Field | undefined;
  for (const [key, message] of Object.entries(apiFields)) {
    const last = key.split(".").pop() ?? "";
    const target = fields[key] ?? fields[last] ?? fields[last.replace(/_(\w)/g, (_, c: string) => c.toUpperCase())];
    if (target) {
      target.setError(message);
      first ??= target;
    } else unplaced.push(`${key}: ${message}`);
  }
  const hasFields = Object.keys(apiFields).length > 0;
  general.set(
    hasFields && !unplaced.length
      ? "Please check the highlighted fields."
      : [hasFields ? "Please check these fields." : errorMessage(err), ...unplaced].join(" "),
  );
  first?.input.focus();
}

/** A whole number stepper: − [n] +, clamped to [min, max]. */
export function quantityControl(opts: { value: number; min: number; max: number; label: string; testid: string; onChange: (value: number) => void }): {
  el: HTMLElement;
  input: HTMLInputElement;
  setDisabled(disabled: boolean): void;
  set(value: number): void;
} {
  const input = h("input", {
    type: "number",
    inputmode: "numeric",
    min: opts.min,
    max: opts.max,
    step: 1,
    value: opts.value,
    "aria-label": opts.label,
    "data-testid": opts.testid,
  });
  let current = opts.value;
  const clamp = (n: number) => Math.min(opts.max, Math.max(opts.min, Math.round(n)));
  const commit = (n: number) => {
    const next = clamp(Number.isFinite(n) ? n : current);
    input.value = String(next);
    const changed = next !== current;
    current = next;
    sync();
    if (changed) opts.onChange(next);
  };
  const dec = h(
    "button",
    {
      type: "button",
      class: "qty-step",
      "aria-label": `Decrease ${opts.label.toLowerCase()}`,
      "data-testid": `${opts.testid}-dec`,
      onclick: () => commit(current - 1),
    },
    "−",
  );
  const inc = h(
    "button",
    {
      type: "button",
      class: "qty-step",
      "aria-label": `Increase ${opts.label.toLowerCase()}`,
      "data-testid": `${opts.testid}-inc`,
      onclick: () => commit(current + 1),
    },
    "+",
  );
  const sync = () => {
    dec.disabled = input.disabled || current <= opts.min;
    inc.disabled = input.disabled || current >= opts.max;
  };
  input.addEventListener("change", () => commit(Number(input.value)));
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter") {
      e.preventDefault();
      commit(Number(input.value));
    }
  });
  sync();
  return {
    el: h("div", { class: "qty" }, dec, input, inc),
    input,
    setDisabled(disabled) {
      input.disabled = disabled;
      sync();
      if (disabled) {
        dec.disabled = true;
        inc.disabled = true;
      }
    },
    set(value) {
      current = clamp(value);
      input.value = String(current);
      sync();
    },
  };
}
