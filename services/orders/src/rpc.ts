import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { isAdmin, type Principal, requireUserId } from "@bazaar/platform/auth";
import { InvalidArgumentError } from "@bazaar/platform/errors";
import type { CallContext } from "@bazaar/platform/grpc/interceptors";
import type { ServiceAccess, ServiceImpl } from "@bazaar/platform/grpc/server";
import { isJsonObject, pageTokenCodec } from "@bazaar/platform/page-token";
import { validatePaymentCard } from "@bazaar/platform/payment-card";
import { type OrderSchema, OrdersService, OrderStatus, type PlaceOrderRequest } from "@bazaar/proto/bazaar/orders/v1/orders_pb";
import type { Caller, OrderCursor, OrderStore, OrderWithItems, PlaceOrderInput } from "./orders.ts";
import { uuidPattern } from "@bazaar/platform/ids";

const defaultPageSize = 20;
const maxPageSize = 100;
const maxLines = 50;

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

function requireOrderId(id: string): string {
  if (!id) throw new InvalidArgumentError("is required", "id");
  if (!uuidPattern.test(id)) throw new InvalidArgumentError(`must be an order id (a UUID), got ${JSON.stringify(id.slice(0, 64))}`, "id");
  return id.toLowerCase();
}

function callerOf(principal: Principal | undefined): Caller {
  return { userId: requireUserId(principal), admin: isAdmin(principal) };
}

/**
 * Checks a PlaceOrder request field by field; returns it normalized (ids lower-case, card
 * digits only). The card's expiry is checked when a new order is placed (OrderStore.place).
 */
export function validatePlaceOrder(req: PlaceOrderRequest, now = new Date()): PlaceOrderInput {
  const key = req.idempotencyKey;
  if (key.length < 8 || key.length > 128) {
    throw new InvalidArgumentError(`must be 8 to 128 characters, got ${key.length}; send a new random key per checkout (a UUID will do)`, "idempotency_key");
  }
  if (!/^[\x21-\x7e]+$/.test(key)) throw new InvalidArgumentError("must be printable ASCII without spaces", "idempotency_key");

  if (req.lines.length < 1 || req.lines.length > maxLines) {
    throw new InvalidArgumentError(`must have 1 to ${maxLines} lines, got ${req.lines.length}`, "lines");
  }
  const seen = new Map<string, number>();
  const lines = req.lines.map((line, i) => {
    if (!uuidPattern.test(line.productId)) {
      throw new InvalidArgumentError(`must be a product id (a UUID), got ${JSON.stringify(line.productId.slice(0, 64))}`, `lines[${i}].product_id`);
    }
    const productId = line.productId.toLowerCase();
    const first = seen.get(productId);
    if (first !== undefined) {
      throw new InvalidArgumentError(`names the same product as lines[${first}]; order each product once, with its total quantity`, `lines[${i}].product_id`);
    }
    seen.set(productId, i);
    if (line.quantity < 1 || line.quantity > 99) throw new InvalidArgumentError(`must be between 1 and 99, got ${line.quantity}`, `lines[${i}].quantity`);
    return { productId, quantity: line.quantity };
  });

  return { idempotencyKey: key, lines, card: validatePaymentCard(req.card, now) };
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
      return { order: toOrderMessage(await store.get(caller, requireOrderId(req.id))) };
    },

    async listOrders(req, ctx) {
      const caller = callerOf(ctx.principal);
      if (req.pageSize < 0 || req.pageSize > maxPageSize) {
        throw new InvalidArgumentError(`must be between 1 and ${maxPageSize} (0 means ${defaultPageSize}), got ${req.pageSize}`, "page_size");
      }
      const scope = caller.admin ? "all" : "own";
      const cursor = req.pageToken ? pageTokens.decode(req.pageToken, scope) : undefined;
      const page = await store.list(caller, req.pageSize || defaultPageSize, cursor);
      return { orders: page.orders.map(toOrderMessage), nextPageToken: page.next ? pageTokens.encode(page.next, scope) : "" };
    },

    async cancelOrder(req, ctx) {
      const caller = callerOf(ctx.principal);
      return { order: toOrderMessage(await store.cancel(caller, requireOrderId(req.id), waitWithin(ctx, options.waitMs))) };
    },
  };
}
