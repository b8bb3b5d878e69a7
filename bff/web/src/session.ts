/** Signing in and out as the rest of the UI sees it: state, counts and the live event stream. */
import { ApiError, api, loadSession, read, setUnauthenticatedHandler, type User } from "./api.ts";
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
  if (!(await readSession())) void askAgainLater();
}

/** Reads the session once; false if the BFF could not read it just now (a 503: try again), true otherwise. */
async function readSession(): Promise<boolean> {
  try {
    const session = await loadSession(AbortSignal.timeout(5_000));
    if (session.user) signedIn(session.user);
    return true;
  } catch (err) {
    // Anything but a 503 (no answer at all, say): browse signed out.
    return !(err instanceof ApiError && err.status === 503);
  }
}

/**
 * The BFF could not read this browser's session (its Redis was out): the shop browses signed
 * out meanwhile, and the session is asked for again every few seconds for a minute, so the
 * shopper is signed in again by itself once the BFF can read it.
 */
async function askAgainLater(): Promise<void> {
  for (let attempt = 0; attempt < 20 && !state.user; attempt++) {
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    if (await readSession()) return;
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
