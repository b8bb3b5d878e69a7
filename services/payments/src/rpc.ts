import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { isAdmin } from "@bazaar/platform/auth";
import { InvalidArgumentError, NotFoundError, UnauthenticatedError } from "@bazaar/platform/errors";
import type { ServiceAccess, ServiceImpl } from "@bazaar/platform/grpc/server";
import { type PaymentSchema, PaymentsService, PaymentStatus } from "@bazaar/proto/bazaar/payments/v1/payments_pb";
import type { PaymentRow, PaymentStatusName } from "./db/schema.ts";
import { type FaultSettingsStore, validateFaultSettings } from "./fault-settings.ts";
import type { PaymentStore } from "./payments.ts";
import { validateCard } from "./processor.ts";
import { uuidPattern } from "@bazaar/platform/ids";

// Visible ASCII: keys end up in messages and logs, so no spaces or control characters.
const idempotencyKeyPattern = /^[\x21-\x7e]{8,128}$/;
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

function requireUuid(value: string, field: string, what: string): string {
  if (!value) throw new InvalidArgumentError("is required", field);
  if (!uuidPattern.test(value)) throw new InvalidArgumentError(`must be ${what} (a UUID), got ${JSON.stringify(value.slice(0, 64))}`, field);
  return value.toLowerCase();
}

function requireIdempotencyKey(key: string): string {
  if (!idempotencyKeyPattern.test(key)) {
    throw new InvalidArgumentError(`must be 8 to 128 visible ASCII characters (no spaces), got ${key.length} characters`, "idempotency_key");
  }
  return key;
}

/**
 * Who may call what. Charges and refunds are the orders saga's (a service), never a shopper's
 * own doing; a payment can be read by services, admins and the user who paid (checked in the
 * handler); the fault settings are for admins.
 */
export const paymentsAccess: ServiceAccess<typeof PaymentsService> = {
  charge: "service",
  refund: "service",
  getPayment: "user",
  getFaultSettings: "admin",
  setFaultSettings: "admin",
};

/** The payments RPC handlers: validate the request, ask the store, shape the response. */
export function paymentsHandlers(store: PaymentStore, faults: FaultSettingsStore): ServiceImpl<typeof PaymentsService> {
  return {
    async charge(req, ctx) {
      // Every field is checked before anything is read or written.
      const idempotencyKey = requireIdempotencyKey(req.idempotencyKey);
      const orderId = requireUuid(req.orderId, "order_id", "an order id");
      const userId = requireUuid(req.userId, "user_id", "a user id");
      const amount = req.amount;
      if (!amount) throw new InvalidArgumentError("is required", "amount");
      if (amount.amountMinor <= 0n || amount.amountMinor > maxAmountMinor) {
        throw new InvalidArgumentError(`must be between 1 and ${maxAmountMinor} (minor units), got ${amount.amountMinor}`, "amount.amount_minor");
      }
      if (!/^[A-Z]{3}$/.test(amount.currencyCode)) {
        throw new InvalidArgumentError(`must be an ISO 4217 code such as USD, got ${JSON.stringify(amount.currencyCode.slice(0, 16))}`, "amount.currency_code");
      }
      // Its expiry is checked by the processor, for new charges only (see validateCard).
      const card = validateCard(req.card);
      const payment = await store.charge(
        { idempotencyKey, orderId, userId, amountMinor: Number(amount.amountMinor), currency: amount.currencyCode, card },
        ctx,
      );
      return { payment: toPaymentMessage(payment) };
    },

    async refund(req, ctx) {
      const idempotencyKey = requireIdempotencyKey(req.idempotencyKey);
      const paymentId = requireUuid(req.paymentId, "payment_id", "a payment id");
      if (req.reason.length > maxReasonLength) throw new InvalidArgumentError(`must be at most ${maxReasonLength} characters, got ${req.reason.length}`, "reason");
      const payment = await store.refund({ idempotencyKey, paymentId, reason: req.reason.trim() }, ctx);
      return { payment: toPaymentMessage(payment) };
    },

    async getPayment(req, ctx) {
      const id = requireUuid(req.id, "id", "a payment id");
      const caller = ctx.principal;
      if (!caller) throw new UnauthenticatedError("GetPayment needs a signed-in caller");
      const payment = await store.get(id);
      // Someone else's payment is as unknown to a shopper as one that does not exist.
      const mayRead =
        payment !== undefined && (caller.roles.includes("service") || isAdmin(caller) || caller.userId?.toLowerCase() === payment.userId);
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
