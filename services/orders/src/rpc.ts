import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { isAdmin, type Principal, requireUserId } from "@bazaar/platform/auth";
import type { CallContext } from "@bazaar/platform/grpc/interceptors";
import type { ServiceAccess, ServiceImpl } from "@bazaar/platform/grpc/server";
import { isJsonObject, pageTokenCodec } from "@bazaar/platform/page-token";
import { type OrderSchema, type OrdersService, OrderStatus, type PlaceOrderRequest } from "@bazaar/proto/bazaar/orders/v1/orders_pb";
import type { Caller, OrderCursor, OrderStore, OrderWithItems, PlaceOrderInput } from "./orders.ts";
import { uuidPattern } from "@bazaar/platform/ids";
import { InvalidArgumentError } from "@bazaar/platform/errors";
import { field, idempotencyKey, money, optional, pageSize, paymentMethodToken, productLines, uuid, validate } from "@bazaar/platform/validation";

const maxLines = 50;
const maxQuantity = 99;
const orderId = uuid("an order id");

/**
 * ListOrders page tokens, each good only for the listing it was issued for: "own" (a user's
 * own orders) or "all" (an admin's, everyone's).
 */
const pageTokens = pageTokenCodec<OrderCursor>({
  parse: (c) => {
    if (!isJsonObject(c) || typeof c.createdAt !== "string" || typeof c.id !== "string" || !uuidPattern.test(c.id)) return undefined;
    const createdAt = new Date(c.createdAt);
    return Number.isNaN(createdAt.getTime()) ? undefined : { createdAt, id: c.id };
  },
  mismatch: () => "was issued to a caller with other rights; start again from the first page",
});

const statusOf = { PENDING: OrderStatus.PENDING, CONFIRMED: OrderStatus.CONFIRMED, CANCELLED: OrderStatus.CANCELLED } as const;

/** Row → message. */
export function toOrderMessage(o: OrderWithItems): MessageInitShape<typeof OrderSchema> {
  const money = (amountMinor: number) => ({ currencyCode: o.currency, amountMinor: BigInt(amountMinor) });
  return {
    id: o.id,
    userId: o.userId,
    status: statusOf[o.status],
    items: o.items.map((i) => ({
      productId: i.productId,
      name: i.name,
      unitPrice: money(i.unitPriceMinor),
      quantity: i.quantity,
      lineTotal: money(i.unitPriceMinor * i.quantity),
    })),
    total: money(o.totalMinor),
    cancelReason: o.cancelReason,
    paymentId: o.paymentId ?? "",
    createTime: timestampFromDate(o.createdAt),
    updateTime: timestampFromDate(o.updatedAt),
  };
}

/** The id of a GetOrder or CancelOrder. */
function requestedOrder(id: string): string {
  return validate({ id: field("id", id, orderId) }).id;
}

function callerOf(principal: Principal | undefined): Caller {
  return { userId: requireUserId(principal), admin: isAdmin(principal) };
}

/** An order's lines: 1 to 50, each product once, 1 to 99 units each. */
const orderLines = productLines({
  maxLines,
  maxQuantity,
  again: (first) => `names the same product as lines[${first}]; order each product once, with its total quantity`,
});

/**
 * Checks a PlaceOrder request field by field; returns it normalized (ids lower-case). A card is
 * refused outright: orders never takes one (payments tokenizes it).
 */
export function validatePlaceOrder(req: PlaceOrderRequest): PlaceOrderInput {
  if (req.card) {
    throw new InvalidArgumentError(
      "is no longer accepted: orders never sees a card; tokenize it with PaymentsService.CreatePaymentMethod and send payment_method_token",
      "card",
    );
  }
  return validate({
    idempotencyKey: field("idempotency_key", req.idempotencyKey, idempotencyKey),
    lines: field("lines", req.lines, orderLines),
    paymentMethodToken: field("payment_method_token", req.paymentMethodToken, paymentMethodToken),
    expectedTotal: field("expected_total", req.expectedTotal, optional(money(0n, BigInt(Number.MAX_SAFE_INTEGER)))),
  });
}

/** How long a call may wait for a final order: the configured wait, inside the caller's deadline. */
function waitWithin(ctx: CallContext, waitMs: number): number {
  return Math.max(0, Math.min(waitMs, ctx.deadline.getTime() - Date.now() - 250));
}

/** Every RPC is a signed-in user's (admins are users too); ownership is checked per order. */
export const ordersAccess: ServiceAccess<typeof OrdersService> = {
  placeOrder: "user",
  getOrder: "user",
  listOrders: "user",
  cancelOrder: "user",
};

/** The orders service's RPC handlers: validate the request, ask the store, shape the response. */
export function ordersHandlers(store: OrderStore, options: { waitMs: number }): ServiceImpl<typeof OrdersService> {
  return {
    async placeOrder(req, ctx) {
      const userId = requireUserId(ctx.principal);
      const input = validatePlaceOrder(req);
      return { order: toOrderMessage(await store.place(userId, input, waitWithin(ctx, options.waitMs))) };
    },

    async getOrder(req, ctx) {
      const caller = callerOf(ctx.principal);
      return { order: toOrderMessage(await store.get(caller, requestedOrder(req.id))) };
    },

    async listOrders(req, ctx) {
      const caller = callerOf(ctx.principal);
      const { size } = validate({ size: field("page_size", req.pageSize, pageSize) });
      const scope = caller.admin ? "all" : "own";
      const cursor = req.pageToken ? pageTokens.decode(req.pageToken, scope) : undefined;
      const page = await store.list(caller, size, cursor);
      return { orders: page.orders.map(toOrderMessage), nextPageToken: page.next ? pageTokens.encode(page.next, scope) : "" };
    },

    async cancelOrder(req, ctx) {
      const caller = callerOf(ctx.principal);
      return { order: toOrderMessage(await store.cancel(caller, requestedOrder(req.id), waitWithin(ctx, options.waitMs))) };
    },
  };
}
