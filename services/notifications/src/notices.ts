import { PoisonMessageError } from "@bazaar/platform/messaging/broker";
import type {
  OrderCancelled,
  OrderConfirmed,
  OrderPlaced,
  PaymentCaptured,
  PaymentFailed,
  PaymentRefunded,
  UserRegistered,
} from "@bazaar/proto/bazaar/events/v1/events_pb";
import { uuidPattern } from "@bazaar/platform/ids";
import { formatMoney } from "@bazaar/platform/money";

/** A notification to make, before it has an id and a time. */
export interface NotificationDraft {
  userId: string;
  /** The event's name without its version, e.g. "order.confirmed". */
  kind: string;
  title: string;
  body: string;
  orderId: string | null;
}

/**
 * An id an event must carry for a notification to be made at all. Without it the message can
 * never be processed, so it is poison: it goes to the DLQ at once instead of being retried.
 */
function requiredId(value: string, field: string): string {
  if (!uuidPattern.test(value)) {
    throw new PoisonMessageError(`${field}: must be a UUID, got ${JSON.stringify(value.slice(0, 64))}`);
  }
  return value.toLowerCase();
}

/** Text from another service, made fit for a one-line notification: no control characters, bounded. */
function clean(text: string, max: number): string {
  const flat = text.replace(/[\p{Cc}\s]+/gu, " ").trim();
  return flat.length > max ? `${flat.slice(0, max - 1).trimEnd()}…` : flat;
}

/** A reason as the end of a sentence we write: cleaned, without its own final full stop. */
function reasonText(reason: string): string {
  return clean(reason, 300).replace(/[.!\s]+$/u, "");
}

/** The first 8 characters of an order id: what the shop shows shoppers as the order number. */
export function shortOrderId(orderId: string): string {
  return orderId.slice(0, 8);
}

/** "2 × Ceramic Mug, 1 × Walnut Board and 3 more": the first lines of an order. */
function linesSummary(lines: OrderPlaced["lines"]): string {
  const shown = lines.slice(0, 3).map((l) => `${l.quantity} × ${clean(l.name, 80) || "an item"}`);
  const more = lines.length - shown.length;
  return more > 0 ? `${shown.join(", ")} and ${more} more` : shown.join(", ");
}

/** UserRegistered → "Welcome to Bazaar, <name>!". */
export function welcomeNotice(e: UserRegistered): NotificationDraft {
  const name = clean(e.displayName, 80);
  return {
    userId: requiredId(e.userId, "user_id"),
    kind: "user.registered",
    title: name ? `Welcome to Bazaar, ${name}!` : "Welcome to Bazaar!",
    body: "Your account is ready. Browse the catalog, fill your cart, and we will keep you posted here on every order.",
    orderId: null,
  };
}

/** OrderPlaced → "Order 1a2b3c4d placed". */
export function orderPlacedNotice(e: OrderPlaced): NotificationDraft {
  const orderId = requiredId(e.orderId, "order_id");
  const order = shortOrderId(orderId);
  const items = e.lines.length ? ` (${linesSummary(e.lines)})` : "";
  const total = e.total && formatMoney(e.total);
  return {
    userId: requiredId(e.userId, "user_id"),
    kind: "order.placed",
    title: `Order ${order} placed`,
    body: `We received your order ${order}${items}${total ? ` for ${total}` : ""}. We will let you know as soon as it is confirmed.`,
    orderId,
  };
}

/** OrderConfirmed → "Order 1a2b3c4d confirmed". */
export function orderConfirmedNotice(e: OrderConfirmed): NotificationDraft {
  const orderId = requiredId(e.orderId, "order_id");
  const order = shortOrderId(orderId);
  const total = e.total && formatMoney(e.total);
  return {
    userId: requiredId(e.userId, "user_id"),
    kind: "order.confirmed",
    title: `Order ${order} confirmed`,
    body: `Your order ${order}${total ? ` for ${total}` : ""} is confirmed and paid. We are getting it ready.`,
    orderId,
  };
}

/** OrderCancelled → "Order 1a2b3c4d cancelled", with the reason. */
export function orderCancelledNotice(e: OrderCancelled): NotificationDraft {
  const orderId = requiredId(e.orderId, "order_id");
  const order = shortOrderId(orderId);
  const reason = reasonText(e.reason);
  return {
    userId: requiredId(e.userId, "user_id"),
    kind: "order.cancelled",
    title: `Order ${order} cancelled`,
    body: `Your order ${order} was cancelled.${reason ? ` Reason: ${reason}.` : ""}`,
    orderId,
  };
}

/** PaymentCaptured → "Payment of $42.50 received". */
export function paymentCapturedNotice(e: PaymentCaptured): NotificationDraft {
  const orderId = requiredId(e.orderId, "order_id");
  const order = shortOrderId(orderId);
  const amount = e.amount && formatMoney(e.amount);
  return {
    userId: requiredId(e.userId, "user_id"),
    kind: "payment.captured",
    title: amount ? `Payment of ${amount} received` : "Payment received",
    body: `We received your payment${amount ? ` of ${amount}` : ""} for order ${order}. Thank you!`,
    orderId,
  };
}

/** PaymentFailed → "Payment for order 1a2b3c4d failed", with the reason. */
export function paymentFailedNotice(e: PaymentFailed): NotificationDraft {
  const orderId = requiredId(e.orderId, "order_id");
  const order = shortOrderId(orderId);
  const amount = e.amount && formatMoney(e.amount);
  const reason = reasonText(e.reason);
  return {
    userId: requiredId(e.userId, "user_id"),
    kind: "payment.failed",
    title: `Payment for order ${order} failed`,
    body: `We could not charge ${amount ?? "your payment"} for order ${order}.${reason ? ` Reason: ${reason}.` : ""}`,
    orderId,
  };
}

/** PaymentRefunded → "Refund of $42.50 on its way". */
export function paymentRefundedNotice(e: PaymentRefunded): NotificationDraft {
  const orderId = requiredId(e.orderId, "order_id");
  const order = shortOrderId(orderId);
  const amount = e.amount && formatMoney(e.amount);
  return {
    userId: requiredId(e.userId, "user_id"),
    kind: "payment.refunded",
    title: amount ? `Refund of ${amount} on its way` : "Refund on its way",
    body: `We refunded ${amount ?? "your payment"} for order ${order}. It can take a few days to show on your statement.`,
    orderId,
  };
}
