/**
 * Live order updates: one EventSource on /api/events while someone is signed in. The browser
 * reconnects by itself after a dropped connection and sends Last-Event-ID, so the BFF replays
 * what was missed. If the stream is refused outright (the EventSource closes), we open a new
 * one after a growing pause and tell listeners to re-read, since that one starts afresh.
 */
import type { Order } from "./api.ts";

type OrderListener = (order: Order) => void;

const orderListeners = new Set<OrderListener>();
const reopenListeners = new Set<() => void>();
let source: EventSource | undefined;
let retryTimer: ReturnType<typeof setTimeout> | undefined;
let retryDelay = 2_000;
let wanted = false;
/** The id of the last update seen, for a stream we open ourselves (the BFF reads ?lastEventId=). */
let lastEventId = "";
/** Asked before opening a new stream after a refusal: false when the person is signed out. */
let stillSignedIn: () => Promise<boolean> = async () => true;
/** Set when we had to open a new stream ourselves (no Last-Event-ID replay). */
let reopened = false;

function open(): void {
  retryTimer = undefined;
  if (!wanted || source) return;
  const es = new EventSource(lastEventId ? `/api/events?${new URLSearchParams({ lastEventId })}` : "/api/events");
  source = es;
  let opened = false;
  es.addEventListener("open", () => {
    retryDelay = 2_000;
    // Reopened (natively or by us): a page may have missed updates before Last-Event-ID applied.
    if (opened || reopened) for (const listener of reopenListeners) listener();
    opened = true;
    reopened = false;
  });
  es.addEventListener("order", (e) => {
    const message = e as MessageEvent<string>;
    if (message.lastEventId) lastEventId = message.lastEventId;
    let order: Order;
    try {
      order = JSON.parse(message.data) as Order;
    } catch {
      return;
    }
    if (!order?.id) return;
    for (const listener of orderListeners) listener(order);
  });
  es.addEventListener("error", () => {
    if (es.readyState !== EventSource.CLOSED) return; // the browser is reconnecting by itself
    es.close();
    if (source === es) source = undefined;
    if (!wanted) return;
    reopened = true;
    const delay = retryDelay;
    retryDelay = Math.min(retryDelay * 2, 60_000);
    // Refused (e.g. 401 after signing out elsewhere): only try again while still signed in.
    retryTimer = setTimeout(() => {
      void stillSignedIn().then(
        (yes) => (yes ? open() : disconnectEvents()),
        () => open(),
      );
    }, delay);
  });
}

/** Sets the check made before reopening a refused stream. */
export function setEventsGuard(check: () => Promise<boolean>): void {
  stillSignedIn = check;
}

/** Starts listening (signed in). */
export function connectEvents(): void {
  wanted = true;
  if (!source && !retryTimer) open();
}

/** Stops listening (signed out). */
export function disconnectEvents(): void {
  wanted = false;
  lastEventId = "";
  if (retryTimer) clearTimeout(retryTimer);
  retryTimer = undefined;
  source?.close();
  source = undefined;
}

/** Whether updates are flowing right now. */
export function eventsLive(): boolean {
  return source?.readyState === EventSource.OPEN;
}

/** Calls `listener` with every order update until `signal` aborts. */
export function onOrderUpdate(listener: OrderListener, signal: AbortSignal): void {
  orderListeners.add(listener);
  signal.addEventListener("abort", () => orderListeners.delete(listener), { once: true });
}

/** Calls `listener` whenever the stream comes back after a break, until `signal` aborts. */
export function onEventsReopen(listener: () => void, signal: AbortSignal): void {
  reopenListeners.add(listener);
  signal.addEventListener("abort", () => reopenListeners.delete(listener), { once: true });
}
