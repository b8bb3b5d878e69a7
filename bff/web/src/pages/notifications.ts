/** Notifications: newest first, unread ones marked, "Mark all as read". */
import { type Answer, api, type Notification, read, withSignal } from "../api.ts";
import { h } from "../dom.ts";
import { onOrderUpdate } from "../events.ts";
import { pager } from "../page-load.ts";
import { type PageContext, setTitle } from "../router.ts";
import { setState, state } from "../state.ts";
import { emptyState, errorMessage, formatDate, loading, plural } from "../ui.ts";

type NotificationPage = Answer<typeof api.notifications.$get>;
type Shown = Map<string, { n: Notification; el: HTMLElement }>;

const listNotifications = (pageToken: string | undefined, signal: AbortSignal) => read(api.notifications.$get({ query: { pageToken } }, withSignal(signal)));

/** Marks a notification read on the page (the BFF is told separately). */
function markShownRead(n: Notification, el: HTMLElement): void {
  n.read = true;
  el.classList.remove("unread");
  el.dataset.read = "true";
  el.querySelector(".unread-dot")?.remove();
}

/** One notification; following its order link marks it read. */
function notificationItem(n: Notification, onOpen: (el: HTMLElement) => void): HTMLElement {
  const el = h(
    "li",
    { class: n.read ? "notification" : "notification unread", "data-testid": "notification", "data-read": String(n.read) },
    !n.read && h("span", { class: "unread-dot", "aria-label": "Unread" }),
    h(
      "div",
      { class: "notification-body" },
      h("p", { class: "notification-title" }, n.title),
      n.body && h("p", { class: "notification-text" }, n.body),
      h(
        "p",
        { class: "muted small" },
        formatDate(n.createdAt),
        n.orderId && [formatDate(n.createdAt) ? " · " : "", h("a", { href: `/orders/${n.orderId}`, onclick: () => onOpen(el) }, "View order")],
      ),
    ),
  );
  return el;
}

/** Shows a page of notifications: added to the list, or instead of it; the empty state when there are none. */
function drawNotifications(
  page: NotificationPage,
  append: boolean,
  view: { root: HTMLElement; list: HTMLElement; items: Shown; markRead: (n: Notification, el: HTMLElement) => void },
): void {
  const { root, list, items } = view;
  if (!append) {
    items.clear();
    list.replaceChildren();
  }
  for (const n of page.notifications) {
    if (items.has(n.id)) continue;
    const el = notificationItem(n, (el) => view.markRead(n, el));
    items.set(n.id, { n, el });
    list.append(el);
  }
  if (!list.isConnected && items.size) root.querySelector("[data-testid=notifications-empty]")?.replaceWith(list);
  if (items.size === 0 && list.isConnected)
    list.replaceWith(
      emptyState("notifications-empty", "No notifications yet", "We let you know here when your orders are confirmed or cancelled.", {
        href: "/",
        label: "Browse products",
      }),
    );
}

/** "Mark all as read": tells the BFF, then marks every shown notification. */
function markAllButton(items: Shown, setUnread: (n: number) => void, summary: HTMLElement): HTMLButtonElement {
  const markAll = h("button", { type: "button", class: "button secondary small", "data-testid": "mark-all-read", disabled: true }, "Mark all as read");
  markAll.addEventListener("click", async () => {
    markAll.disabled = true;
    markAll.textContent = "Marking…";
    try {
      await read(api.notifications.read.$post({ json: { all: true } }));
      for (const { n, el } of items.values()) markShownRead(n, el);
      setUnread(0);
    } catch (err) {
      summary.textContent = errorMessage(err);
      markAll.disabled = false;
    } finally {
      markAll.textContent = "Mark all as read";
    }
  });
  return markAll;
}

export async function notificationsPage({ root, signal }: PageContext): Promise<void> {
  setTitle("Notifications");
  const items: Shown = new Map();
  const summary = h("p", { class: "results-status", role: "status" });
  let unread = 0;
  const setUnread = (n: number) => {
    unread = Math.max(0, n);
    markAll.disabled = unread === 0;
    summary.textContent = unread ? `${plural(unread, "unread notification")}.` : items.size ? "You are all caught up." : "";
    setState({ unread });
  };
  const markAll = markAllButton(items, setUnread, summary);
  const list = h("ul", { class: "notification-list", "data-testid": "notifications-page", "aria-label": "Notifications" });
  const more = h("div", { class: "more" });
  const status = loading("Loading notifications…");
  root.append(h("div", { class: "title-row" }, h("h1", { class: "page-title" }, "Notifications"), markAll), summary, status, list, more);

  const markRead = (n: Notification, el: HTMLElement) => {
    if (n.read) return;
    markShownRead(n, el);
    setUnread(unread - 1);
    void read(api.notifications.read.$post({ json: { ids: [n.id] } })).catch(() => undefined);
  };
  const draw = (page: NotificationPage, append: boolean) => {
    drawNotifications(page, append, { root, list, items, markRead });
    setUnread(page.unreadCount);
  };

  let paged = false;
  const pages = pager({
    more,
    fetch: (pageToken) => {
      if (pageToken) paged = true;
      return listNotifications(pageToken, signal);
    },
    failed: () => status.remove(),
    render: (page, pageToken) => {
      status.remove();
      draw(page, !!pageToken);
    },
  });

  // An order that settles brings a notification: re-read the first page (unless more were loaded).
  onOrderUpdate((o) => {
    if (o.status === "PENDING" || paged) return;
    setTimeout(() => {
      if (!signal.aborted)
        void listNotifications(undefined, signal).then(
          (p) => pages.show(p),
          () => undefined,
        );
    }, 800);
  }, signal);

  if (state.unread !== null) setUnread(state.unread);
  await pages.load();
}
