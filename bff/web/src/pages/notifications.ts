/** Notifications: newest first, unread ones marked, "Mark all as read". */
import { api, type Notification, type NotificationPage } from "../api.ts";
import { h } from "../dom.ts";
import { onOrderUpdate } from "../events.ts";
import { type PageContext, setTitle } from "../router.ts";
import { setState, state } from "../state.ts";
import { emptyState, errorBox, errorMessage, formatDate, loading, plural } from "../ui.ts";

export async function notificationsPage({ root, signal }: PageContext): Promise<void> {
  setTitle("Notifications");
  const markAll = h("button", { type: "button", class: "button secondary small", "data-testid": "mark-all-read", disabled: true }, "Mark all as read");
  const summary = h("p", { class: "results-status", role: "status" });
  const list = h("ul", { class: "notification-list", "data-testid": "notifications-page", "aria-label": "Notifications" });
  const more = h("div", { class: "more" });
  const status = loading("Loading notifications…");
  root.append(h("div", { class: "title-row" }, h("h1", { class: "page-title" }, "Notifications"), markAll), summary, status, list, more);

  let unread = 0;
  let paged = false;
  const items = new Map<string, { n: Notification; el: HTMLElement }>();

  const setUnread = (n: number) => {
    unread = Math.max(0, n);
    markAll.disabled = unread === 0;
    summary.textContent = unread ? `${plural(unread, "unread notification")}.` : items.size ? "You are all caught up." : "";
    setState({ unread });
  };

  const markRead = (n: Notification, el: HTMLElement) => {
    if (n.read) return;
    n.read = true;
    el.classList.remove("unread");
    el.dataset.read = "true";
    el.querySelector(".unread-dot")?.remove();
    setUnread(unread - 1);
    void api.markNotificationsRead({ ids: [n.id] }).catch(() => undefined);
  };

  const itemView = (n: Notification): HTMLElement => {
    const el = h(
      "li",
      { class: n.read ? "notification" : "notification unread", "data-testid": "notification", "data-read": String(n.read) },
      !n.read && h("span", { class: "unread-dot", "aria-label": "Unread" }),
      h("div", { class: "notification-body" },
        h("p", { class: "notification-title" }, n.title),
        n.body && h("p", { class: "notification-text" }, n.body),
        h("p", { class: "muted small" },
          formatDate(n.createdAt),
          n.orderId && [formatDate(n.createdAt) ? " · " : "", h("a", { href: `/orders/${n.orderId}`, onclick: () => markRead(n, el) }, "View order")],
        ),
      ),
    );
    return el;
  };

  const draw = (page: NotificationPage, append: boolean) => {
    if (!append) {
      items.clear();
      list.replaceChildren();
    }
    for (const n of page.notifications) {
      if (items.has(n.id)) continue;
      const el = itemView(n);
      items.set(n.id, { n, el });
      list.append(el);
    }
    if (!list.isConnected && items.size) root.querySelector("[data-testid=notifications-empty]")?.replaceWith(list);
    if (items.size === 0 && list.isConnected) list.replaceWith(emptyState("notifications-empty", "No notifications yet", "We let you know here when your orders are confirmed or cancelled.", { href: "/", label: "Browse products" }));
    setUnread(page.unreadCount);
    more.replaceChildren();
    if (page.nextPageToken) {
      const token = page.nextPageToken;
      more.append(h("button", { type: "button", class: "button", "data-testid": "show-more", onclick: () => void load(token) }, "Show more"));
    }
  };

  const load = async (pageToken?: string) => {
    if (pageToken) {
      paged = true;
      more.replaceChildren(loading());
    }
    try {
      const page = await api.listNotifications(pageToken, signal);
      status.remove();
      draw(page, !!pageToken);
    } catch (err) {
      if ((err as Error).name === "AbortError") return;
      status.remove();
      more.replaceChildren(errorBox(err, () => void load(pageToken)));
    }
  };

  markAll.addEventListener("click", async () => {
    markAll.disabled = true;
    markAll.textContent = "Marking…";
    try {
      await api.markNotificationsRead({ all: true });
      for (const { n, el } of items.values()) {
        n.read = true;
        el.classList.remove("unread");
        el.dataset.read = "true";
        el.querySelector(".unread-dot")?.remove();
      }
      setUnread(0);
    } catch (err) {
      summary.textContent = errorMessage(err);
      markAll.disabled = false;
    } finally {
      markAll.textContent = "Mark all as read";
    }
  });

  // An order that settles brings a notification: re-read the first page (unless more were loaded).
  onOrderUpdate((o) => {
    if (o.status === "PENDING" || paged) return;
    setTimeout(() => {
      if (!signal.aborted) void api.listNotifications(undefined, signal).then((p) => draw(p, false), () => undefined);
    }, 800);
  }, signal);

  if (state.unread !== null) setUnread(state.unread);
  await load();
}
