/**
 * One order, with a status that follows the saga live: PENDING (spinning) until it is
 * CONFIRMED or CANCELLED (with the reason), pushed over /api/events. If the stream is down,
 * a pending order is re-read every few seconds instead.
 */
import { api, ApiError, type Order } from "../api.ts";
import { h } from "../dom.ts";
import { eventsLive, onEventsReopen, onOrderUpdate } from "../events.ts";
import { type PageContext, reload, setTitle } from "../router.ts";
import { refreshCartSoon } from "../state.ts";
import { errorBox, errorMessage, formatDate, loading, plural, shortId, statusBadge } from "../ui.ts";

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

export async function orderPage({ root, params, signal }: PageContext): Promise<void> {
  const id = params[0]!;
  setTitle(`Order ${shortId(id)}`);
  let order = known.get(id);
  known.delete(id);
  // Just placed and already final: the cart changes (emptied once confirmed) shortly.
  if (order && order.status !== "PENDING") refreshCartSoon();
  if (!order) {
    root.append(loading("Loading your order…"));
    try {
      order = (await api.getOrder(id, signal)).order;
    } catch (err) {
      if ((err as Error).name === "AbortError") return;
      if (err instanceof ApiError && (err.status === 404 || err.status === 400)) {
        root.replaceChildren(
          h("div", { class: "notice empty", "data-testid": "not-found" },
            h("h1", {}, "Order not found"),
            h("p", {}, "There is no order of yours at this address."),
            h("a", { href: "/orders", class: "button" }, "Your orders"),
          ),
        );
        return;
      }
      root.replaceChildren(errorBox(err, reload));
      return;
    }
  }
  let current: Order = order;

  const statusPanel = h("div", { class: "status-panel", role: "status", "aria-live": "polite", "data-testid": "order-status-panel" });
  const actions = h("div", { class: "order-actions" });
  const actionError = h("p", { class: "line-error", role: "alert" });

  const cancelFlow = () => {
    const ask = h("button", { type: "button", class: "button secondary", "data-testid": "cancel-order" }, "Cancel order");
    ask.addEventListener("click", () => {
      const yes = h("button", { type: "button", class: "button danger", "data-testid": "cancel-confirm" }, "Yes, cancel it");
      const no = h("button", { type: "button", class: "button secondary" }, "Keep it");
      no.addEventListener("click", () => {
        actions.replaceChildren(cancelFlow());
        (actions.querySelector("button") as HTMLElement | null)?.focus();
      });
      yes.addEventListener("click", async () => {
        yes.disabled = no.disabled = true;
        yes.textContent = "Cancelling…";
        actionError.textContent = "";
        try {
          apply((await api.cancelOrder(id)).order);
        } catch (err) {
          actionError.textContent = errorMessage(err);
          yes.disabled = no.disabled = false;
          yes.textContent = "Yes, cancel it";
          // It may have settled meanwhile.
          void refetch();
        }
      });
      actions.replaceChildren(h("span", { class: "confirm-text" }, "Cancel this order?"), yes, no);
      yes.focus();
    });
    return ask;
  };

  const drawStatus = () => {
    const o = current;
    const reason = o.status === "CANCELLED" ? o.cancelReason || "No reason was given." : "";
    statusPanel.className = `status-panel status-${o.status.toLowerCase()}`;
    statusPanel.replaceChildren(
      statusBadge(o.status, "order-status"),
      h("p", { class: "status-message" }, statusMessage[o.status]),
      reason && h("p", { class: "status-reason", "data-testid": "order-reason" }, reason),
    );
    if (o.status === "PENDING") actions.replaceChildren(cancelFlow());
    else if (o.status === "CANCELLED")
      actions.replaceChildren(
        h("a", { href: "/cart", class: "button", "data-testid": "back-to-cart" }, "Back to your cart"),
        h("a", { href: "/", class: "button secondary" }, "Continue shopping"),
      );
    else actions.replaceChildren(h("a", { href: "/", class: "button" }, "Continue shopping"), h("a", { href: "/orders", class: "button secondary" }, "All your orders"));
  };

  const apply = (next: Order) => {
    if (next.id !== id || !isNewer(current, next)) return;
    const settled = current.status === "PENDING" && next.status !== "PENDING";
    current = next;
    drawStatus();
    if (settled) refreshCartSoon();
    schedulePoll();
  };

  const refetch = async () => {
    try {
      apply((await api.getOrder(id, signal)).order);
    } catch {
      /* keep what is shown; the next update or poll will do */
    }
  };

  // Updates pushed by the BFF; a fresh read whenever the stream had to start over.
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

  const o = current;
  root.replaceChildren(
    h("nav", { class: "crumbs", "aria-label": "Breadcrumb" }, h("a", { href: "/orders" }, "Your orders"), " / ", shortId(o.id)),
    h("article", { class: "order", "data-testid": "order-page", "data-order-id": o.id },
      h("header", { class: "order-head" },
        h("h1", {}, `Order ${shortId(o.id)}`),
        h("p", { class: "muted" }, [formatDate(o.createdAt) && `Placed ${formatDate(o.createdAt)} · `, plural(o.items.reduce((n, i) => n + i.quantity, 0), "item")]),
      ),
      statusPanel,
      h("ul", { class: "order-lines", "aria-label": "Items" },
        o.items.map((item) =>
          h("li", { class: "order-line", "data-testid": "order-line" },
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
  );
  drawStatus();
  schedulePoll();
  // The order may have settled between the answer above and the stream delivering it.
  if (current.status === "PENDING") void refetch();
}
