import { requireUserId } from "@bazaar/platform/auth";
import { InvalidArgumentError } from "@bazaar/platform/errors";
import type { ServiceAccess, ServiceImpl } from "@bazaar/platform/grpc/server";
import type { CartService } from "@bazaar/proto/bazaar/cart/v1/cart_pb";
import { cartLimits } from "./cart-store.ts";
import type { Carts } from "./carts.ts";
import { uuidPattern } from "@bazaar/platform/ids";


/** Every RPC acts on the caller's own cart, so every one needs a signed-in user. */
export const cartAccess: ServiceAccess<typeof CartService> = {
  getCart: "user",
  addItem: "user",
  updateItem: "user",
  removeItem: "user",
  clearCart: "user",
};

/** A product id as the catalog spells it (lower case), or INVALID_ARGUMENT naming product_id. */
function productId(id: string): string {
  if (!id) throw new InvalidArgumentError("is required", "product_id");
  if (!uuidPattern.test(id)) throw new InvalidArgumentError(`must be a product id (a UUID), got ${JSON.stringify(id.slice(0, 64))}`, "product_id");
  return id.toLowerCase();
}

function quantity(n: number, min: number): number {
  if (!Number.isInteger(n) || n < min || n > cartLimits.unitsPerLine) {
    throw new InvalidArgumentError(`must be between ${min} and ${cartLimits.unitsPerLine}, got ${n}`, "quantity");
  }
  return n;
}

/**
 * The cart's RPC handlers. The cart is always the caller's: its key comes from the verified
 * token's user id, never from the request, so no request can name another user's cart. A
 * service token has no user and so no cart (PERMISSION_DENIED).
 */
export function cartHandlers(carts: Carts): ServiceImpl<typeof CartService> {
  return {
    async getCart(_req, ctx) {
      return { cart: await carts.get(requireUserId(ctx.principal)) };
    },

    async addItem(req, ctx) {
      const userId = requireUserId(ctx.principal);
      return { cart: await carts.add(userId, productId(req.productId), quantity(req.quantity, 1)) };
    },

    async updateItem(req, ctx) {
      const userId = requireUserId(ctx.principal);
      return { cart: await carts.update(userId, productId(req.productId), quantity(req.quantity, 0)) };
    },

    async removeItem(req, ctx) {
      const userId = requireUserId(ctx.principal);
      return { cart: await carts.remove(userId, productId(req.productId)) };
    },

    async clearCart(_req, ctx) {
      await carts.clear(requireUserId(ctx.principal));
      return {};
    },
  };
}
