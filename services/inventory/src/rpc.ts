import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { UnauthenticatedError } from "@bazaar/platform/errors";
import type { ServiceAccess, ServiceImpl } from "@bazaar/platform/grpc/server";
import { type InventoryService, type ReservationSchema, ReservationStatus } from "@bazaar/proto/bazaar/inventory/v1/inventory_pb";
import type { ReservationStatus as StoredStatus } from "./db/schema.ts";
import type { CatalogBackfill } from "./catalog-backfill.ts";
import type { InventoryStore, Reservation } from "./inventory-store.ts";
import { field, integer, list, productLines, text, uuid, validate, violation } from "@bazaar/platform/validation";

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

const productId = uuid("a product id");
const orderId = uuid("an order id");

/** The lines of a reservation: 1 to 100, each product once, 1 to 1000 units each. */
const reservationLines = productLines({
  maxLines,
  maxQuantity,
  again: (first, id) => `names product ${id} again (also items[${first}]); put each product on one line`,
});

/** A stock adjustment's units: not 0, at most a million either way. */
function delta(n: number): number {
  if (n === 0) violation("must not be 0: give the units to add (positive) or remove (negative)");
  return integer(-maxAdjustment, maxAdjustment)(n);
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

/**
 * The inventory's RPC handlers: validate the request, ask the store, shape the response.
 * `products` checks with the catalog that a product exists before it is stocked.
 */
export function inventoryHandlers(store: InventoryStore, products: Pick<CatalogBackfill, "ensureProduct">): ServiceImpl<typeof InventoryService> {
  return {
    async getStock(req) {
      const { ids } = validate({ ids: field("product_ids", req.productIds, list(productId, { min: 1, max: maxIds, noun: "product" })) });
      return { levels: await store.levels(ids) };
    },

    async reserveStock(req) {
      const { id, lines } = validate({ id: field("order_id", req.orderId, orderId), lines: field("items", req.items, reservationLines) });
      return { reservation: toReservationMessage(await store.reserve(id, lines)) };
    },

    async commitReservation(req) {
      const { id } = validate({ id: field("order_id", req.orderId, orderId) });
      return { reservation: toReservationMessage(await store.commit(id)) };
    },

    async releaseReservation(req) {
      const { id } = validate({ id: field("order_id", req.orderId, orderId) });
      const released = await store.release(id);
      return released ? { reservation: toReservationMessage(released) } : {};
    },

    async adjustStock(req, ctx) {
      const change = validate({
        productId: field("product_id", req.productId, productId),
        delta: field("delta", req.delta, delta),
        reason: field("reason", req.reason, text({ max: maxReasonLength, trim: true, required: 'say why the stock changes, e.g. "delivery 2026-11-20"' })),
      });
      // The auth interceptor let only an admin through; the principal is there.
      if (!ctx.principal) throw new UnauthenticatedError("adjusting stock needs a signed-in admin");
      // Stock only for products the catalog has: a made-up id would make a row no page shows.
      await products.ensureProduct(change.productId);
      return { level: await store.adjust(change.productId, change.delta, change.reason, ctx.principal.subject) };
    },
  };
}
