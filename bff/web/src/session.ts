/** Signing in and out as the rest of the UI sees it: state, counts and the live event stream. */
import { api, loadSession, read, setUnauthenticatedHandler, type User } from "./api.ts";
import { forgetCart } from "./cart-copy.ts";
import { connectEvents, disconnectEvents, onOrderUpdate, setEventsGuard } from "./events.ts";
import { refreshCartCount, refreshCartSoon, refreshUnread, setState, state } from "./state.ts";

/** Reads /api/session once at start; without it the shop still browses, signed out. */
export async function startSession(): Promise<void> {
  setUnauthenticatedHandler(() => {
    if (state.user) signedOut();
  });
  setEventsGuard(async () => {
    const { user } = await loadSession();
    if (!user) signedOut();
    return !!user;
  });
  // An order that settles changes the cart (cleared when confirmed) and adds a notification.
  onOrderUpdate((order) => {
    if (order.status === "PENDING") return;
    refreshCartSoon();
    setTimeout(() => void refreshUnread(true), 800);
  }, new AbortController().signal);
  try {
    const session = await loadSession(AbortSignal.timeout(5_000));
    if (session.user) signedIn(session.user);
  } catch {
    /* signed out */
  }
}

export function signedIn(user: User): void {
  setState({ user, cartCount: state.user?.id === user.id ? state.cartCount : null, unread: null });
  connectEvents();
  void refreshCartCount();
  void refreshUnread(true);
}

export function signedOut(): void {
  disconnectEvents();
  setState({ user: null, cartCount: null, unread: null, cartLost: 0 });
}

/** Signs out at the BFF; the local state is cleared even if that call fails. */
export async function signOut(): Promise<void> {
  // Signing out on purpose: the next person at this computer must not see the cart's copy.
  if (state.user) forgetCart(state.user.id);
  try {
    await read(api.auth.signout.$post());
  } finally {
    signedOut();
    // A new session may come with a new CSRF token.
    await loadSession().catch(() => undefined);
  }
}
