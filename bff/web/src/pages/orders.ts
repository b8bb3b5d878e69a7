/** The person's orders, newest first, statuses kept live. Also the row the admin page reuses. */
import { api, type Order, read, withSignal } from "../api.ts";
import { h } from "../dom.ts";
import { onOrderUpdate } from "../events.ts";
import { pager } from "../page-load.ts";
import { type PageContext, setTitle } from "../router.ts";
import { emptyState, formatDate, loading, plural, shortId, statusBadge } from "../ui.ts";
import { isNewer } from "./order.ts";

/** One order as a row: number, date, items, total, status; links to its page. */
export function orderRow(o: Order, testid = "order-row", href: string | undefined = `/orders/${o.id}`): HTMLElement {
  const items = o.items.reduce((n, i) => n + i.quantity, 0);
  const names = o.items.map((i) => i.name).join(", ");
  return h(
    "li",
    { class: "order-row", "data-testid": testid, "data-order-id": o.id },
    h(
      "div",
      { class: "order-row-main" },
      href ? h("a", { href, class: "order-number" }, `Order ${shortId(o.id)}`) : h("span", { class: "order-number" }, `Order ${shortId(o.id)}`),
      h("span", { class: "muted" }, [formatDate(o.createdAt), plural(items, "item")].filter(Boolean).join(" · ")),
      h("span", { class: "order-names" }, names),
      o.status === "CANCELLED" && o.cancelReason ? h("span", { class: "order-row-reason" }, o.cancelReason) : null,
    ),
    h("div", { class: "order-row-side" }, h("strong", {}, o.total.display), statusBadge(o.status)),
  );
}

export async function ordersPage({ root, signal }: PageContext): Promise<void> {
  setTitle("Your orders");
  const list = h("ul", { class: "order-list", "data-testid": "orders-page", "aria-label": "Orders" });
  const more = h("div", { class: "more" });
  const status = loading("Loading your orders…");
  root.append(h("h1", { class: "page-title" }, "Your orders"), status, list, more);
  const shown = new Map<string, { order: Order; el: HTMLElement }>();

  onOrderUpdate((o) => {
    const row = shown.get(o.id);
    if (row && isNewer(row.order, o)) {
      const el = orderRow(o);
      row.el.replaceWith(el);
      shown.set(o.id, { order: o, el });
    } else if (!row && list.isConnected) {
      // A new order (placed in another tab) goes on top.
      const el = orderRow(o);
      list.prepend(el);
      shown.set(o.id, { order: o, el });
    }
  }, signal);

  await pager({
    more,
    fetch: (pageToken) => read(api.orders.$get({ query: { pageToken } }, withSignal(signal))),
    failed: () => status.remove(),
    ended: () => shown.size === 0,
    render: (page, pageToken) => {
      status.remove();
      for (const o of page.orders) {
        if (shown.has(o.id)) continue;
        const el = orderRow(o);
        shown.set(o.id, { order: o, el });
        list.append(el);
      }
      if (shown.size === 0) {
        list.replaceWith(
          emptyState("orders-empty", "No orders yet", "When you place an order it shows up here, with its status.", { href: "/", label: "Start shopping" }),
        );
        return;
      }
      if (pageToken) (list.children[list.children.length - page.orders.length]?.querySelector("a") as HTMLElement | null)?.focus();
    },
  }).load();
}
