/**
 * One order, with a status that follows the saga live: PENDING (spinning) until it is
 * CONFIRMED or CANCELLED (with the reason), pushed over /api/events. If the stream is down,
 * a pending order is re-read every few seconds instead.
 */
import { api, ApiError, type Order, read, withSignal } from "../api.ts";
import { h } from "../dom.ts";
import { eventsLive, onEventsReopen, onOrderUpdate } from "../events.ts";
import { inside, load, type Place } from "../page-load.ts";
import { type PageContext, setTitle } from "../router.ts";
import { refreshCartSoon } from "../state.ts";
import { errorMessage, formatDate, loading, plural, shortId, statusBadge } from "../ui.ts";

/** Orders just placed, shown at once on their page. */
const known = new Map<string, Order>();
export function rememberOrder(order: Order): void {
  known.set(order.id, order);
}

/** Whether `next` is news over `current`: a final state never goes back to PENDING. */
export function isNewer(current: Order, next: Order): boolean {
  if (current.status !== "PENDING" && next.status === "PENDING") return false;
  if (current.status === "PENDING" && next.status !== "PENDING") return true;
  const a = Date.parse(current.updatedAt);
  const b = Date.parse(next.updatedAt);
  return Number.isNaN(a) || Number.isNaN(b) || b >= a;
}

const statusMessage: Record<Order["status"], string> = {
  PENDING: "We are reserving your items and taking payment…",
  CONFIRMED: "Thank you! Your order is confirmed.",
  CANCELLED: "This order was cancelled.",
};

const POLL_MS = 4_000;

const getOrder = (id: string, signal?: AbortSignal) => read(api.orders[":id"].$get({ param: { id } }, withSignal(signal)));

export async function orderPage({ root, params, signal }: PageContext): Promise<void> {
  const id = params[0]!;
  setTitle(`Order ${shortId(id)}`);
  const order = known.get(id);
  known.delete(id);
  if (order) {
    // Just placed and already final: the cart changes (emptied once confirmed) shortly.
    if (order.status !== "PENDING") refreshCartSoon();
    return showOrder(id, order, inside(root), signal);
  }
  root.append(loading("Loading your order…"));
  await load({
    fetch: () => getOrder(id, signal),
    place: inside(root),
    explain: (err) =>
      err instanceof ApiError && (err.status === 404 || err.status === 400)
        ? h(
            "div",
            { class: "notice empty", "data-testid": "not-found" },
            h("h1", {}, "Order not found"),
            h("p", {}, "There is no order of yours at this address."),
            h("a", { href: "/orders", class: "button" }, "Your orders"),
          )
        : undefined,
    render: ({ order }, place) => showOrder(id, order, place, signal),
  });
}

/**
 * Draws the order and keeps its status live: updates pushed by the BFF, a fresh read whenever
 * the stream had to start over, and a poll while it is pending and the stream is down.
 */
function showOrder(id: string, order: Order, place: Place, signal: AbortSignal): void {
  let current = order;
  const statusPanel = h("div", { class: "status-panel", role: "status", "aria-live": "polite", "data-testid": "order-status-panel" });
  const actions = h("div", { class: "order-actions" });
  const actionError = h("p", { class: "line-error", role: "alert" });

  const refetch = async () => {
    try {
      apply((await getOrder(id, signal)).order);
    } catch {
      /* keep what is shown; the next update or poll will do */
    }
  };
  const cancel = async () => apply((await read(api.orders[":id"].cancel.$post({ param: { id } }))).order);
  const drawStatus = () => {
    drawOrderStatus(current, statusPanel);
    actions.replaceChildren(...(current.status === "PENDING" ? [cancelButton({ actions, actionError, cancel, refetch })] : nextSteps(current)));
  };
  const apply = (next: Order) => {
    if (next.id !== id || !isNewer(current, next)) return;
    const settled = current.status === "PENDING" && next.status !== "PENDING";
    current = next;
    drawStatus();
    if (settled) refreshCartSoon();
    schedulePoll();
  };

  onOrderUpdate(apply, signal);
  onEventsReopen(() => void refetch(), signal);
  let pollTimer: ReturnType<typeof setTimeout> | undefined;
  const schedulePoll = () => {
    if (pollTimer) clearTimeout(pollTimer);
    pollTimer = undefined;
    if (current.status !== "PENDING" || signal.aborted) return;
    pollTimer = setTimeout(async () => {
      if (!eventsLive()) await refetch();
      schedulePoll();
    }, POLL_MS);
  };
  signal.addEventListener("abort", () => pollTimer && clearTimeout(pollTimer), { once: true });

  place(...orderView(current, statusPanel, actions, actionError));
  drawStatus();
  schedulePoll();
  // The order may have settled between the answer above and the stream delivering it.
  if (current.status === "PENDING") void refetch();
}

/** The order's breadcrumb and page: its lines and total around the live status panel and actions. */
function orderView(o: Order, statusPanel: HTMLElement, actions: HTMLElement, actionError: HTMLElement): Node[] {
  return [
    h("nav", { class: "crumbs", "aria-label": "Breadcrumb" }, h("a", { href: "/orders" }, "Your orders"), " / ", shortId(o.id)),
    h(
      "article",
      { class: "order", "data-testid": "order-page", "data-order-id": o.id },
      h(
        "header",
        { class: "order-head" },
        h("h1", {}, `Order ${shortId(o.id)}`),
        h("p", { class: "muted" }, [
          formatDate(o.createdAt) && `Placed ${formatDate(o.createdAt)} · `,
          plural(
            o.items.reduce((n, i) => n + i.quantity, 0),
            "item",
          ),
        ]),
      ),
      statusPanel,
      h(
        "ul",
        { class: "order-lines", "aria-label": "Items" },
        o.items.map((item) =>
          h(
            "li",
            { class: "order-line", "data-testid": "order-line" },
            h("a", { href: `/products/${item.productId}`, class: "line-name" }, item.name),
            h("span", { class: "muted" }, `${item.quantity} × ${item.unitPrice.display}`),
            h("span", { class: "line-total" }, item.lineTotal.display),
          ),
        ),
      ),
      h("p", { class: "order-total" }, "Total ", h("strong", { "data-testid": "order-total" }, o.total.display)),
      actions,
      actionError,
    ),
  ];
}

/** The status panel: the badge, what it means and, when cancelled, why. */
function drawOrderStatus(o: Order, statusPanel: HTMLElement): void {
  const reason = o.status === "CANCELLED" ? o.cancelReason || "No reason was given." : "";
  statusPanel.className = `status-panel status-${o.status.toLowerCase()}`;
  statusPanel.replaceChildren(
    statusBadge(o.status, "order-status"),
    h("p", { class: "status-message" }, statusMessage[o.status]),
    reason && h("p", { class: "status-reason", "data-testid": "order-reason" }, reason),
  );
}

/** Where to go from a final order. */
function nextSteps(o: Order): HTMLElement[] {
  if (o.status === "CANCELLED") {
    return [
      h("a", { href: "/cart", class: "button", "data-testid": "back-to-cart" }, "Back to your cart"),
      h("a", { href: "/", class: "button secondary" }, "Continue shopping"),
    ];
  }
  return [h("a", { href: "/", class: "button" }, "Continue shopping"), h("a", { href: "/orders", class: "button secondary" }, "All your orders")];
}

/** "Cancel order", confirmed once more before it cancels; a failure says why and re-reads the order. */
function cancelButton(flow: { actions: HTMLElement; actionError: HTMLElement; cancel: () => Promise<void>; refetch: () => Promise<void> }): HTMLElement {
  const { actions, actionError } = flow;
  const ask = h("button", { type: "button", class: "button secondary", "data-testid": "cancel-order" }, "Cancel order");
  ask.addEventListener("click", () => {
    const yes = h("button", { type: "button", class: "button danger", "data-testid": "cancel-confirm" }, "Yes, cancel it");
    const no = h("button", { type: "button", class: "button secondary" }, "Keep it");
    no.addEventListener("click", () => {
      actions.replaceChildren(cancelButton(flow));
      (actions.querySelector("button") as HTMLElement | null)?.focus();
    });
    yes.addEventListener("click", async () => {
      yes.disabled = no.disabled = true;
      yes.textContent = "Cancelling…";
      actionError.textContent = "";
      try {
        await flow.cancel();
      } catch (err) {
        actionError.textContent = errorMessage(err);
        yes.disabled = no.disabled = false;
        yes.textContent = "Yes, cancel it";
        // It may have settled meanwhile.
        void flow.refetch();
      }
    });
    actions.replaceChildren(h("span", { class: "confirm-text" }, "Cancel this order?"), yes, no);
    yes.focus();
  });
  return ask;
}
