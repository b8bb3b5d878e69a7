import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { InvalidArgumentError, UnauthenticatedError } from "@bazaar/platform/errors";
import type { ServiceAccess, ServiceImpl } from "@bazaar/platform/grpc/server";
import {
  InventoryService,
  type LineItem,
  type ReservationSchema,
  ReservationStatus,
} from "@bazaar/proto/bazaar/inventory/v1/inventory_pb";
import type { ReservationStatus as StoredStatus } from "./db/schema.ts";
import type { InventoryStore, Line, Reservation } from "./inventory-store.ts";
import { uuidPattern } from "@bazaar/platform/ids";

const maxIds = 100;
const maxLines = 100;
const maxQuantity = 1000;
const maxAdjustment = 1_000_000;
const maxReasonLength = 200;

const statusToMessage: Record<StoredStatus, ReservationStatus> = {
  RESERVED: ReservationStatus.RESERVED,
  COMMITTED: ReservationStatus.COMMITTED,
  RELEASED: ReservationStatus.RELEASED,
  EXPIRED: ReservationStatus.EXPIRED,
};

/** Row → message. */
export function toReservationMessage(r: Reservation): MessageInitShape<typeof ReservationSchema> {
  return {
    orderId: r.orderId,
    items: r.items.map((i) => ({ productId: i.productId, quantity: i.quantity })),
    status: statusToMessage[r.status],
    expireTime: timestampFromDate(r.expiresAt),
  };
}

/** A UUID in its canonical lower-case form, or INVALID_ARGUMENT naming the field. */
function requireUuid(value: string, field: string, what: string): string {
  if (!value) throw new InvalidArgumentError("is required", field);
  if (!uuidPattern.test(value)) throw new InvalidArgumentError(`must be ${what} (a UUID), got ${JSON.stringify(value.slice(0, 64))}`, field);
  return value.toLowerCase();
}

/** The lines of a reservation: 1 to 100, each product once, 1 to 1000 units each. */
function requireLines(items: readonly LineItem[]): Line[] {
  if (items.length === 0) throw new InvalidArgumentError("must hold at least one line", "items");
  if (items.length > maxLines) throw new InvalidArgumentError(`must hold at most ${maxLines} lines, got ${items.length}`, "items");
  const seen = new Map<string, number>();
  return items.map((item, i) => {
    const productId = requireUuid(item.productId, `items[${i}].product_id`, "a product id");
    const first = seen.get(productId);
    if (first !== undefined) {
      throw new InvalidArgumentError(`names product ${productId} again (also items[${first}]); put each product on one line`, `items[${i}].product_id`);
    }
    seen.set(productId, i);
    if (item.quantity < 1 || item.quantity > maxQuantity) {
      throw new InvalidArgumentError(`must be between 1 and ${maxQuantity}, got ${item.quantity}`, `items[${i}].quantity`);
    }
    return { productId, quantity: item.quantity };
  });
}

/**
 * Who may call what: stock levels are public (the shop shows them); reservations are the
 * orders saga's, which calls with its service token; adjusting stock is for admins.
 */
export const inventoryAccess: ServiceAccess<typeof InventoryService> = {
  getStock: "public",
  reserveStock: "service",
  commitReservation: "service",
  releaseReservation: "service",
  adjustStock: "admin",
};

/** The inventory's RPC handlers: validate the request, ask the store, shape the response. */
export function inventoryHandlers(store: InventoryStore): ServiceImpl<typeof InventoryService> {
  return {
    async getStock(req) {
      if (req.productIds.length === 0) throw new InvalidArgumentError("must name at least one product", "product_ids");
      if (req.productIds.length > maxIds) throw new InvalidArgumentError(`must name at most ${maxIds} products, got ${req.productIds.length}`, "product_ids");
      const ids = req.productIds.map((id, i) => requireUuid(id, `product_ids[${i}]`, "a product id"));
      return { levels: await store.levels(ids) };
    },

    async reserveStock(req) {
      const orderId = requireUuid(req.orderId, "order_id", "an order id");
      const lines = requireLines(req.items);
      return { reservation: toReservationMessage(await store.reserve(orderId, lines)) };
    },

    async commitReservation(req) {
      const orderId = requireUuid(req.orderId, "order_id", "an order id");
      return { reservation: toReservationMessage(await store.commit(orderId)) };
    },

    async releaseReservation(req) {
      const orderId = requireUuid(req.orderId, "order_id", "an order id");
      const released = await store.release(orderId);
      return released ? { reservation: toReservationMessage(released) } : {};
    },

    async adjustStock(req, ctx) {
      const productId = requireUuid(req.productId, "product_id", "a product id");
      if (req.delta === 0) throw new InvalidArgumentError("must not be 0: give the units to add (positive) or remove (negative)", "delta");
      if (Math.abs(req.delta) > maxAdjustment) {
        throw new InvalidArgumentError(`must be between -${maxAdjustment} and ${maxAdjustment}, got ${req.delta}`, "delta");
      }
      const reason = req.reason.trim();
      if (!reason) throw new InvalidArgumentError("is required: say why the stock changes, e.g. \"delivery 2026-11-20\"", "reason");
      if (reason.length > maxReasonLength) throw new InvalidArgumentError(`must be at most ${maxReasonLength} characters, got ${reason.length}`, "reason");
      // The auth interceptor let only an admin through; the principal is there.
      if (!ctx.principal) throw new UnauthenticatedError("adjusting stock needs a signed-in admin");
      return { level: await store.adjust(productId, req.delta, reason, ctx.principal.subject) };
    },
  };
}
