import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { isAdmin, requireUserId } from "@bazaar/platform/auth";
import { InvalidArgumentError, NotFoundError, UnauthenticatedError } from "@bazaar/platform/errors";
import type { ServiceAccess, ServiceImpl } from "@bazaar/platform/grpc/server";
import { type PaymentMethodSchema, type PaymentSchema, type PaymentsService, PaymentStatus } from "@bazaar/proto/bazaar/payments/v1/payments_pb";
import type { PaymentMethodRow, PaymentRow, PaymentStatusName } from "./db/schema.ts";
import { type FaultSettingsStore, validateFaultSettings } from "./fault-settings.ts";
import type { PaymentStore } from "./payments.ts";
import { validateCard } from "./processor.ts";
import { field, idempotencyKey, money, paymentMethodToken, required, text, uuid, validate } from "@bazaar/platform/validation";

const maxAmountMinor = 100_000_000n;
const maxReasonLength = 500;

const statusOf: Record<PaymentStatusName, PaymentStatus> = {
  CAPTURED: PaymentStatus.CAPTURED,
  FAILED: PaymentStatus.FAILED,
  REFUNDED: PaymentStatus.REFUNDED,
};

/** Row → message. */
export function toPaymentMessage(p: PaymentRow): MessageInitShape<typeof PaymentSchema> {
  return {
    id: p.id,
    orderId: p.orderId,
    userId: p.userId,
    amount: { currencyCode: p.currency, amountMinor: BigInt(p.amountMinor) },
    status: statusOf[p.status],
    failureReason: p.failureReason ?? "",
    cardLast4: p.cardLast4,
    createTime: timestampFromDate(p.createdAt),
  };
}

/** Row → message, with the token that only CreatePaymentMethod's answer ever shows. */
function toPaymentMethodMessage(token: string, p: PaymentMethodRow): MessageInitShape<typeof PaymentMethodSchema> {
  return { token, cardLast4: p.cardLast4, brand: p.cardBrand, expireTime: timestampFromDate(p.expiresAt) };
}

const paymentId = uuid("a payment id");

/**
 * Who may call what. A signed-in user tokenizes their own card (the BFF does it with the
 * shopper's token); charges and refunds are the orders saga's (a service), never a shopper's
 * own doing; a payment can be read by services, admins and the user who paid (checked in the
 * handler); the fault settings are for admins.
 */
export const paymentsAccess: ServiceAccess<typeof PaymentsService> = {
  createPaymentMethod: "user",
  charge: "service",
  refund: "service",
  getPayment: "user",
  getFaultSettings: "admin",
  setFaultSettings: "admin",
};

/** The payments RPC handlers: validate the request, ask the store, shape the response. */
export function paymentsHandlers(store: PaymentStore, faults: FaultSettingsStore): ServiceImpl<typeof PaymentsService> {
  return {
    async createPaymentMethod(req, ctx) {
      // The token is the caller's: a service token (no user) is PERMISSION_DENIED.
      const userId = requireUserId(ctx.principal);
      // The card's rule names its fields (card, card.number …) itself; the processor refuses an expired card.
      const { card } = validate({ card: field("", req.card, validateCard) });
      const { token, row } = await store.createPaymentMethod(userId.toLowerCase(), card);
      return { paymentMethod: toPaymentMethodMessage(token, row) };
    },

    async charge(req, ctx) {
      // A card in a charge request is refused outright, before anything else is looked at.
      if (req.card) {
        throw new InvalidArgumentError("is no longer accepted: tokenize the card with CreatePaymentMethod and send payment_method_token instead", "card");
      }
      // Every field is checked before anything is read or written.
      const { amount, ...charge } = validate({
        idempotencyKey: field("idempotency_key", req.idempotencyKey, idempotencyKey),
        orderId: field("order_id", req.orderId, uuid("an order id")),
        userId: field("user_id", req.userId, uuid("a user id")),
        amount: field("amount", req.amount, required(money(1n, maxAmountMinor))),
        // Empty only in a replay of an earlier charge (PaymentStore.charge says why).
        paymentMethodToken: field("payment_method_token", req.paymentMethodToken, (token) => (token ? paymentMethodToken(token) : undefined)),
      });
      const payment = await store.charge({ ...charge, amountMinor: amount.amountMinor, currency: amount.currencyCode }, ctx);
      return { payment: toPaymentMessage(payment) };
    },

    async refund(req, ctx) {
      const refund = validate({
        idempotencyKey: field("idempotency_key", req.idempotencyKey, idempotencyKey),
        paymentId: field("payment_id", req.paymentId, paymentId),
        reason: field("reason", req.reason, (reason) => text({ max: maxReasonLength })(reason).trim()),
      });
      const payment = await store.refund(refund, ctx);
      return { payment: toPaymentMessage(payment) };
    },

    async getPayment(req, ctx) {
      const { id } = validate({ id: field("id", req.id, paymentId) });
      const caller = ctx.principal;
      if (!caller) throw new UnauthenticatedError("GetPayment needs a signed-in caller");
      const payment = await store.get(id);
      // Someone else's payment is as unknown to a shopper as one that does not exist.
      const mayRead = payment !== undefined && (caller.roles.includes("service") || isAdmin(caller) || caller.userId?.toLowerCase() === payment.userId);
      if (!payment || !mayRead) throw new NotFoundError(`no payment has id ${id}`);
      return { payment: toPaymentMessage(payment) };
    },

    async getFaultSettings() {
      return { settings: await faults.read() };
    },

    async setFaultSettings(req, ctx) {
      const settings = validateFaultSettings(req.settings);
      return { settings: await faults.set(settings, ctx.principal?.subject ?? "unknown") };
    },
  };
}
