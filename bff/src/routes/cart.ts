import { Hono } from "hono";
import { z } from "zod";
import { type AppEnv, requireUser } from "../auth.ts";
import { cartView } from "../shape.ts";
import type { CartClient } from "../upstreams/cart.ts";
import { valid } from "../validate.ts";

const productId = z.uuid("must be a product id");
const quantity = (min: number) =>
  z.number({ error: "must be a number" }).int("must be a whole number").min(min, `must be at least ${min}`).max(99, "must be at most 99");

const addBody = z.object({ productId, quantity: quantity(1) });
const updateBody = z.object({ quantity: quantity(0) });
const lineParam = z.object({ productId });

/** /api/cart: the signed-in user's cart. Every change answers with the whole cart. */
export function cartRoutes(cart: CartClient) {
  return new Hono<AppEnv>()
    .use(requireUser)
    .get("/", async (c) => {
      const res = await cart.getCart({}, await c.var.auth());
      return c.json({ cart: cartView(res.cart) });
    })
    .post("/items", valid("json", addBody), async (c) => {
      const res = await cart.addItem(c.req.valid("json"), await c.var.auth());
      return c.json({ cart: cartView(res.cart) });
    })
    .patch("/items/:productId", valid("param", lineParam), valid("json", updateBody), async (c) => {
      const res = await cart.updateItem({ productId: c.req.valid("param").productId, quantity: c.req.valid("json").quantity }, await c.var.auth());
      return c.json({ cart: cartView(res.cart) });
    })
    .delete("/items/:productId", valid("param", lineParam), async (c) => {
      const res = await cart.removeItem({ productId: c.req.valid("param").productId }, await c.var.auth());
      return c.json({ cart: cartView(res.cart) });
    });
}
