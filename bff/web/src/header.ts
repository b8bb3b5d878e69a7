/**
 * The header's right side: the cart with its item count, and either sign-in / sign-up links
 * or the person's name opening a menu (orders, notifications with the unread count, admin for
 * admins, sign out). Counts update in place so an open menu stays open.
 */
import { h, svg } from "./dom.ts";
import { flash, here, navigate } from "./router.ts";
import { signOut } from "./session.ts";
import { isAdmin, onStateChange, state } from "./state.ts";

const account = document.getElementById("account") as HTMLElement;

const cartCount = h("span", { class: "count", "data-testid": "cart-count" }, "0");
/** Shown while a lost cart's items wait on the cart page to be put back (see cart-copy.ts). */
const cartLost = h("span", { class: "dot-count lost", "data-testid": "cart-lost-badge", "aria-hidden": "true", hidden: true }, "!");
const cartLink = h(
  "a",
  { href: "/cart", class: "cart-link", "data-testid": "cart-link" },
  basketIcon(),
  h("span", { class: "cart-label" }, "Cart"),
  cartCount,
  cartLost,
);

function basketIcon(): SVGSVGElement {
  const basket = svg("path", {
    d: "M3 6h18l-2 11H5L3 6zm5 0 3-4m5 4-3-4M8 11v3m4-3v3m4-3v3",
    fill: "none",
    stroke: "currentColor",
    "stroke-width": "1.8",
    "stroke-linejoin": "round",
    "stroke-linecap": "round",
  });
  return svg("svg", { viewBox: "0 0 24 24", width: "20", height: "20", "aria-hidden": "true", class: "icon" }, basket);
}

let drawnFor: string | null | undefined; // the user id the links were drawn for
let unreadBadge: HTMLElement | undefined;
let unreadCount: HTMLElement | undefined;
/** Closes the user menu if a click lands outside it. */
let outsideClick: ((target: Node) => void) | undefined;
document.addEventListener("click", (e) => outsideClick?.(e.target as Node));

function updateCounts(): void {
  const n = state.cartCount ?? 0;
  cartCount.textContent = String(n);
  cartCount.classList.toggle("zero", n === 0);
  cartLost.hidden = state.cartLost === 0;
  cartLink.setAttribute("aria-label", `Cart, ${n} item${n === 1 ? "" : "s"}${state.cartLost ? `; ${state.cartLost} went missing and can be put back` : ""}`);
  const unread = state.unread ?? 0;
  if (unreadBadge) {
    unreadBadge.textContent = String(unread);
    unreadBadge.hidden = unread === 0;
  }
  if (unreadCount) {
    unreadCount.textContent = String(unread);
    unreadCount.hidden = unread === 0;
    unreadCount.setAttribute("aria-label", `${unread} unread`);
  }
}

function userMenu(): HTMLElement {
  const user = state.user!;
  unreadBadge = h("span", { class: "dot-count", "data-testid": "unread-badge", "aria-hidden": "true", hidden: true });
  unreadCount = h("span", { class: "count", "data-testid": "unread-count", hidden: true });
  const button = h(
    "button",
    { type: "button", class: "menu-button", "aria-expanded": "false", "aria-controls": "user-menu", "data-testid": "user-menu-button" },
    h("span", { class: "menu-name" }, user.displayName || user.email),
    unreadBadge,
    h("span", { class: "caret", "aria-hidden": "true" }, "▾"),
  );
  const close = (refocus = false) => {
    menu.hidden = true;
    button.setAttribute("aria-expanded", "false");
    if (refocus) button.focus();
  };
  const signOutButton = h("button", { type: "button", class: "menu-item signout", "data-testid": "signout" }, "Sign out");
  signOutButton.addEventListener("click", async () => {
    close();
    signOutButton.disabled = true;
    try {
      await signOut();
      flash("You are signed out.");
    } catch {
      flash("You are signed out on this device.");
    }
    navigate("/");
  });
  const menu = h(
    "div",
    { class: "menu", id: "user-menu", "data-testid": "user-menu", hidden: true },
    h("p", { class: "menu-who" }, "Signed in as ", h("strong", {}, user.email)),
    h("a", { href: "/orders", class: "menu-item", "data-testid": "nav-orders" }, "Orders"),
    h("a", { href: "/notifications", class: "menu-item", "data-testid": "nav-notifications" }, "Notifications", unreadCount),
    isAdmin(user) && h("a", { href: "/admin", class: "menu-item", "data-testid": "nav-admin" }, "Admin"),
    signOutButton,
  );
  menu.addEventListener("click", (e) => {
    if ((e.target as Element).closest("a")) close();
  });
  button.addEventListener("click", () => {
    const open = menu.hidden;
    menu.hidden = !open;
    button.setAttribute("aria-expanded", String(open));
    if (open) (menu.querySelector("a, button") as HTMLElement | null)?.focus();
  });
  const wrap = h("div", { class: "menu-wrap" }, button, menu);
  wrap.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && !menu.hidden) {
      e.preventDefault();
      close(true);
    }
  });
  wrap.addEventListener("focusout", (e) => {
    if (!menu.hidden && !wrap.contains(e.relatedTarget as Node | null) && e.relatedTarget) close();
  });
  outsideClick = (target) => {
    if (!menu.hidden && !wrap.contains(target)) close();
  };
  return wrap;
}

/** Sign in / sign up, bringing the person back to the page they were on. */
function authLink(path: string, cls: string, text: string): HTMLAnchorElement {
  const a = h("a", { href: path, class: cls, "data-testid": `${path.slice(1)}-link` }, text);
  a.addEventListener("click", () => {
    const from = here();
    a.href = /^\/(signin|signup)\b/.test(from) || from === "/" ? path : `${path}?next=${encodeURIComponent(from)}`;
  });
  return a;
}

function draw(): void {
  const userId = state.user?.id ?? null;
  if (userId !== drawnFor) {
    drawnFor = userId;
    unreadBadge = unreadCount = undefined;
    account.replaceChildren(
      cartLink,
      state.user
        ? userMenu()
        : h("span", { class: "auth-links" }, authLink("/signin", "signin-link", "Sign in"), authLink("/signup", "button small", "Sign up")),
    );
  }
  updateCounts();
}

export function startHeader(): void {
  onStateChange(draw);
  draw();
}
