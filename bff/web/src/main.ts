/**
 * Bazaar's storefront: a single-page app on real URLs (history API; links can be shared and
 * the back button works), drawn with the small `h()` builder (text is always text).
 *
 * Pages (bff/web/src/pages/):
 *   /                     catalog, search (?q=) and categories (?category=)   catalog.ts
 *   /products/:id         product page: price, stock, quantity, add to cart    product.ts
 *   /cart                 cart lines, quantities, remove, total, checkout      cart.ts
 *   /signin  /signup      forms; ?next= brings the person back                 auth.ts
 *   /checkout             test card form, one idempotency key per visit        checkout.ts
 *   /orders/:id           order with live status (SSE /api/events)             order.ts
 *   /orders               the person's orders                                  orders.ts
 *   /notifications        notifications, mark all read                         notifications.ts
 *   /admin  /admin/orders products (name, price, stock) and recent orders      admin.ts
 *
 * Test hooks (data-testid), stable for browser tests:
 *   header        cart-link, cart-count (text: the number of items), cart-lost-badge (items
 *                 of a lost cart wait on the cart page), signin-link, signup-link,
 *                 user-menu-button, user-menu, unread-badge, unread-count, nav-orders,
 *                 nav-notifications, nav-admin, signout
 *   any page      loading, error (+ retry button), not-found, flash (one-off message),
 *                 show-more, form-error (general form error), error-<field> (a field's error)
 *   catalog       category-chip, product-card, empty
 *   product       product-page, price, stock (data-available="n"; text "12 in stock",
 *                 "Only 2 left", "Out of stock"), quantity (+ quantity-dec, quantity-inc),
 *                 add-to-cart (disabled when out of stock), add-result, view-cart
 *   cart          cart-page, cart-line (data-product="id"), cart-qty (+ cart-qty-dec,
 *                 cart-qty-inc), cart-remove, cart-line-total, cart-item-count, cart-total,
 *                 checkout (the button to the checkout page), cart-empty; a lost cart:
 *                 cart-lost (data-lines="n"), cart-lost-line (data-product="id"),
 *                 cart-restore, cart-lost-dismiss, cart-restored (data-units="n")
 *   auth          signup-form, signin-form, signup-submit, signin-submit, to-signin, to-signup;
 *                 fields named displayName, email, password (errors: error-email, …)
 *   checkout      checkout-page (data-idempotency-key), checkout-form, test-card-hint,
 *                 card-number, card-exp-month, card-exp-year, card-cvc, place-order,
 *                 checkout-total, checkout-empty
 *   order         order-page (data-order-id), order-status-panel, order-status (the badge;
 *                 data-status="PENDING|CONFIRMED|CANCELLED", text Pending/Confirmed/Cancelled),
 *                 order-reason (when cancelled), order-line, order-total, cancel-order,
 *                 cancel-confirm
 *   orders        orders-page (the list), order-row (data-order-id), orders-empty
 *   notifications notifications-page (the list), notification (data-read="true|false"),
 *                 mark-all-read, notifications-empty
 *   admin         admin-page, forbidden (not an admin), admin-product-row (data-product-id),
 *                 admin-name-input, admin-price-input (dollars, e.g. 12.50), admin-save,
 *                 admin-row-status, admin-stock (available), admin-stock-delta,
 *                 admin-stock-reason, admin-stock-apply, admin-orders, admin-order-row,
 *                 admin-orders-refresh
 */
import "./styles.css";
import { startHeader } from "./header.ts";
import { adminPage } from "./pages/admin.ts";
import { signInPage, signUpPage } from "./pages/auth.ts";
import { cartPage } from "./pages/cart.ts";
import { catalogPage, searchInput } from "./pages/catalog.ts";
import { checkoutPage } from "./pages/checkout.ts";
import { notificationsPage } from "./pages/notifications.ts";
import { orderPage } from "./pages/order.ts";
import { ordersPage } from "./pages/orders.ts";
import { productPage } from "./pages/product.ts";
import { navigate, type Route, startRouter } from "./router.ts";
import { startSession } from "./session.ts";

const uuid = "([0-9a-fA-F-]{1,64})";

const routes: Route[] = [
  { path: /^\/$/, page: catalogPage },
  { path: new RegExp(`^/products/${uuid}$`), page: productPage },
  { path: /^\/cart$/, page: cartPage, auth: true },
  { path: /^\/checkout$/, page: checkoutPage, auth: true },
  { path: /^\/signin$/, page: signInPage },
  { path: /^\/signup$/, page: signUpPage },
  { path: /^\/orders$/, page: ordersPage, auth: true },
  { path: new RegExp(`^/orders/${uuid}$`), page: orderPage, auth: true },
  { path: /^\/notifications$/, page: notificationsPage, auth: true },
  { path: /^\/admin(?:\/(orders))?$/, page: adminPage, auth: true },
];

// The header's search: results on the catalog, keeping the category when already there.
const searchForm = document.getElementById("search-form") as HTMLFormElement;
searchForm.addEventListener("submit", (e) => {
  e.preventDefault();
  const qs = new URLSearchParams(location.pathname === "/" ? location.search : "");
  const q = searchInput().value.trim();
  if (q) qs.set("q", q);
  else qs.delete("q");
  const query = qs.toString();
  navigate(query ? `/?${query}` : "/", { focus: false });
});

startHeader();
// Who is signed in decides what some pages show, so the session comes first.
void startSession().finally(() => startRouter(routes));
