import { type Context, Hono } from "hono";
import type { Cart } from "@bazaar/proto/bazaar/cart/v1/cart_pb";
import { z } from "zod";
import { type AppEnv, requireUser } from "../auth.ts";
import type { CartCounts } from "../cart-counts.ts";
import { cartView } from "../shape.ts";
import type { CartClient } from "../upstreams/cart.ts";
import { valid } from "../validate.ts";

const productId = z.uuid("must be a product id");
const quantity = (min: number) =>
  z.number({ error: "must be a number" }).int("must be a whole number").min(min, `must be at least ${min}`).max(99, "must be at most 99");

const addBody = z.object({ productId, quantity: quantity(1) });
const updateBody = z.object({ quantity: quantity(0) });
const lineParam = z.object({ productId });

/**
 * /api/cart: the signed-in user's cart. Every change answers with the whole cart, and every
 * answer is offered to the count the product page shows (CartCounts), so a change shows there at
 * once, on every replica.
 */
export function cartRoutes(cart: CartClient, cartCounts: CartCounts) {
  const answer = async (c: Context<AppEnv>, res: { cart?: Cart }) => {
    await cartCounts.offer(c.var.user.id, res.cart);
    return c.json({ cart: cartView(res.cart) });
  };
  return new Hono<AppEnv>()
    .use(requireUser)
    .get("/", async (c) => answer(c, await cart.getCart({}, await c.var.auth())))
    .post("/items", valid("json", addBody), async (c) => answer(c, await cart.addItem(c.req.valid("json"), await c.var.auth())))
    .patch("/items/:productId", valid("param", lineParam), valid("json", updateBody), async (c) =>
      answer(c, await cart.updateItem({ productId: c.req.valid("param").productId, quantity: c.req.valid("json").quantity }, await c.var.auth())),
    )
    .delete("/items/:productId", valid("param", lineParam), async (c) =>
      answer(c, await cart.removeItem({ productId: c.req.valid("param").productId }, await c.var.auth())),
    );
}
