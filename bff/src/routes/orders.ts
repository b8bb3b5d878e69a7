import { Hono } from "hono";
import { z } from "zod";
import { type AppEnv, requireUser } from "../auth.ts";
import { orderView } from "../shape.ts";
import type { OrdersClient } from "../upstreams/orders.ts";
import { pageSizeQuery, valid } from "../validate.ts";

const listQuery = z.object({
  pageSize: pageSizeQuery(20),
  pageToken: z.string().max(1024, "is too long").optional().default(""),
});
const idParam = z.object({ id: z.uuid("must be an order id") });

/** /api/orders: the signed-in user's orders (anyone else's is a 404). */
export function orderRoutes(orders: OrdersClient) {
  return new Hono<AppEnv>()
    .use(requireUser)
    .get("/", valid("query", listQuery), async (c) => {
      const page = await orders.listOrders(c.req.valid("query"), await c.var.auth());
      return c.json({ orders: page.orders.map(orderView), nextPageToken: page.nextPageToken || null });
    })
    .get("/:id", valid("param", idParam), async (c) => {
      const { order } = await orders.getOrder({ id: c.req.valid("param").id }, await c.var.auth());
      if (!order) throw new Error("orders answered GetOrder without an order");
      return c.json({ order: orderView(order) });
    })
    .post("/:id/cancel", valid("param", idParam), async (c) => {
      const { order } = await orders.cancelOrder({ id: c.req.valid("param").id }, await c.var.auth());
      if (!order) throw new Error("orders answered CancelOrder without an order");
      return c.json({ order: orderView(order) });
    });
}
