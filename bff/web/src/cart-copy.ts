/**
 * The browser's copy of the shopper's cart, so that a cart the shop lost is not lost silently.
 *
 * Carts live in Redis only (the cart service has no database). Where Redis persists (AOF in
 * compose) a restart keeps them; where it does not (a dev machine's Redis), or where a cart
 * expired unused, the shop forgets it. So every cart answer is copied here, per user, in
 * localStorage: its revision and its lines. The cart service bumps the revision with every
 * change and keeps it when the cart is emptied on purpose (an order confirmed, ClearCart, the
 * last line removed — on any device), so:
 *   - an answer whose revision is LOWER than the copy's means changes the shop had confirmed
 *     are gone: the copy's lines the answer lacks are kept aside as "lost", and the cart page
 *     offers them back (re-added through the API, so today's prices and limits apply);
 *   - any other answer replaces the copy, however empty.
 *
 * Trade-offs: the copy is only in the browser the shopper used (another device shows nothing
 * to restore); a cart lost and then changed elsewhere past its old revision is not noticed;
 * a line whose units were lost but not the line itself is not offered. The copy holds product
 * ids, names and units — nothing that is not on the cart page anyway — and signing out
 * deletes it, so the next person at a shared computer does not see it.
 */
import type { Cart } from "./api.ts";

/** A line as remembered: enough to show it and add it again. */
export interface RememberedLine {
  productId: string;
  name: string;
  quantity: number;
}

/** What localStorage holds for one user. */
interface CartCopy {
  revision: number;
  lines: RememberedLine[];
  /** Lines of a lost cart, until the shopper restores or dismisses them. */
  lost: RememberedLine[];
}

const storageKey = (userId: string) => `bazaar.cart.${userId}`;

function isLines(value: unknown): value is RememberedLine[] {
  return Array.isArray(value) && value.every((l) => typeof l?.productId === "string" && typeof l.name === "string" && Number.isInteger(l.quantity));
}

function load(userId: string): CartCopy | undefined {
  try {
    const copy = JSON.parse(localStorage.getItem(storageKey(userId)) ?? "null") as Partial<CartCopy> | null;
    if (!copy || typeof copy.revision !== "number" || !isLines(copy.lines)) return undefined;
    return { revision: copy.revision, lines: copy.lines, lost: isLines(copy.lost) ? copy.lost : [] };
  } catch {
    // Storage refused (private mode, disabled) or unreadable: no copy.
    return undefined;
  }
}

function save(userId: string, copy: CartCopy): void {
  try {
    localStorage.setItem(storageKey(userId), JSON.stringify(copy));
  } catch {
    /* storage full or refused: the cart works without its copy */
  }
}

/** Copies a cart answer for `userId`; answers the lines of a lost cart still waiting to be restored. */
export function rememberCart(userId: string, cart: Cart): RememberedLine[] {
  const before = load(userId);
  const held = new Set(cart.lines.map((l) => l.productId));
  const lost = (before?.lost ?? []).filter((l) => !held.has(l.productId));
  if (before && cart.revision < before.revision) {
    for (const line of before.lines) if (!held.has(line.productId) && !lost.some((l) => l.productId === line.productId)) lost.push(line);
  }
  save(userId, { revision: cart.revision, lines: cart.lines.map(({ productId, name, quantity }) => ({ productId, name, quantity })), lost });
  return lost;
}

/** The lines of a lost cart waiting to be restored (none if nothing was lost). */
export function lostLines(userId: string): RememberedLine[] {
  return load(userId)?.lost ?? [];
}

/** Stops offering these lost lines (restored, or dismissed). */
export function forgetLost(userId: string, productIds: readonly string[]): void {
  const copy = load(userId);
  if (copy) save(userId, { ...copy, lost: copy.lost.filter((l) => !productIds.includes(l.productId)) });
}

/** Deletes the user's copy (signing out). */
export function forgetCart(userId: string): void {
  try {
    localStorage.removeItem(storageKey(userId));
  } catch {
    /* nothing to delete */
  }
}
