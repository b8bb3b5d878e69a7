/**
 * What every page shares: who is signed in, how many items the cart holds, how many
 * notifications are unread. The header listens and redraws; pages update it.
 */
import { api, type Cart, read, type User } from "./api.ts";
import { rememberCart } from "./cart-copy.ts";

export interface AppState {
  user: User | null;
  /** Items in the cart (sum of quantities); null while unknown. */
  cartCount: number | null;
  /** Unread notifications; null while unknown. */
  unread: number | null;
  /** Units of a lost cart the cart page offers back (cart-copy.ts); 0 when nothing was lost. */
  cartLost: number;
}

export const state: AppState = { user: null, cartCount: null, unread: null, cartLost: 0 };

const listeners = new Set<() => void>();

export function onStateChange(listener: () => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

export function setState(patch: Partial<AppState>): void {
  const changed = (Object.keys(patch) as (keyof AppState)[]).some((k) => patch[k] !== state[k]);
  if (!changed) return;
  Object.assign(state, patch);
  for (const listener of listeners) listener();
}

export const isAdmin = (user: User | null = state.user): boolean => !!user?.roles.includes("admin");

/** After any cart answer: the header's count follows it, and the browser's copy of the cart (cart-copy.ts) too. */
export function cartChanged(cart: Cart): void {
  const lost = state.user ? rememberCart(state.user.id, cart) : [];
  setState({ cartCount: cart.itemCount ?? cart.lines.reduce((n, l) => n + l.quantity, 0), cartLost: lost.reduce((n, l) => n + l.quantity, 0) });
}

/** Re-reads the cart count (signed in only); failures leave the last known count. */
export async function refreshCartCount(): Promise<void> {
  if (!state.user) return setState({ cartCount: null });
  try {
    cartChanged((await read(api.cart.$get())).cart);
  } catch {
    /* the header keeps what it had */
  }
}

/**
 * After an order is confirmed the cart service empties the cart when the event reaches it, a
 * moment later: re-read the count now and twice more.
 */
export function refreshCartSoon(): void {
  void refreshCartCount();
  setTimeout(() => void refreshCartCount(), 1_200);
  setTimeout(() => void refreshCartCount(), 4_000);
}

let unreadAt = 0;
/** Re-reads the unread count (signed in only), at most every few seconds unless forced. */
export async function refreshUnread(force = false): Promise<void> {
  if (!state.user) return setState({ unread: null });
  if (!force && Date.now() - unreadAt < 15_000) return;
  unreadAt = Date.now();
  try {
    setState({ unread: (await read(api.notifications.$get({ query: {} }))).unreadCount });
  } catch {
    /* the header keeps what it had */
  }
}
