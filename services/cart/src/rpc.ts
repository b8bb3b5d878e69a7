import { requireUserId } from "@bazaar/platform/auth";
import type { ServiceAccess, ServiceImpl } from "@bazaar/platform/grpc/server";
import type { CartService } from "@bazaar/proto/bazaar/cart/v1/cart_pb";
import { cartLimits } from "./cart-store.ts";
import type { Carts } from "./carts.ts";
import { field, integer, uuid, validate } from "@bazaar/platform/validation";

/** Every RPC acts on the caller's own cart, so every one needs a signed-in user. */
export const cartAccess: ServiceAccess<typeof CartService> = {
  getCart: "user",
  addItem: "user",
  updateItem: "user",
  removeItem: "user",
  clearCart: "user",
};

const productId = uuid("a product id");

/** The product and quantity of an AddItem (at least 1 unit) or UpdateItem (0 removes the line). */
function itemChange(req: { productId: string; quantity: number }, minQuantity: number) {
  return validate({
    productId: field("product_id", req.productId, productId),
    quantity: field("quantity", req.quantity, integer(minQuantity, cartLimits.unitsPerLine)),
  });
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
      const item = itemChange(req, 1);
      return { cart: await carts.add(userId, item.productId, item.quantity) };
    },

    async updateItem(req, ctx) {
      const userId = requireUserId(ctx.principal);
      const item = itemChange(req, 0);
      return { cart: await carts.update(userId, item.productId, item.quantity) };
    },

    async removeItem(req, ctx) {
      const userId = requireUserId(ctx.principal);
      const { id } = validate({ id: field("product_id", req.productId, productId) });
      return { cart: await carts.remove(userId, id) };
    },

    async clearCart(_req, ctx) {
      await carts.clear(requireUserId(ctx.principal));
      return {};
    },
  };
}
