/**
 * What a load of checkouts ({@link OrderLoad}) owes the shoppers, read from the services' own
 * databases once everything has settled: every accepted order in one final state, charged once
 * if confirmed and never if cancelled, stock exact, one notice per final order, the cart of every
 * confirmed order emptied. Used by the fault suite and the replica tests.
 */
import { eventually } from "@bazaar/testkit/eventually";
import type { TestPlatform } from "@bazaar/testkit/test-platform";
import type { Checkout } from "./order-load.ts";

/** Stock of each product, by id. */
export type StockLevels = Map<string, { onHand: number; reserved: number }>;

/** The stock rows of `productIds` in inventory's database. */
export async function stockLevels(platform: TestPlatform, productIds: readonly string[]): Promise<StockLevels> {
  const rows = await platform.query<{ product_id: string; on_hand: number; reserved: number }>(
    "inventory",
    "select product_id, on_hand, reserved from stock where product_id = any($1)",
    [productIds],
  );
  return new Map(rows.map((r) => [r.product_id, { onHand: r.on_hand, reserved: r.reserved }]));
}

/** The services with an outbox. */
export const servicesWithOutbox = ["identity", "catalog", "inventory", "orders", "payments"] as const;

/** Waits until no outbox holds an unpublished row: every event has been handed to RabbitMQ. */
export async function outboxesDrained(platform: TestPlatform, what: string, timeoutMs = 30_000): Promise<void> {
  for (const service of servicesWithOutbox) {
    await eventually(
      async () => Number((await platform.query<{ n: string }>(service, "select count(*) as n from outbox where published_at is null"))[0]?.n) === 0,
      { what: `${service}'s outbox to drain after ${what}`, timeoutMs },
    );
  }
}

/** The books of a load: figures, and every broken promise by kind (each list empty when all is well). */
export interface OrderLedger {
  placed: number;
  confirmed: string[];
  cancelled: string[];
  problems: {
    /** Orders still PENDING, or accepted checkouts that never saw their order final. */
    unfinished: string[];
    /** Checkouts that gave up once PlaceOrder had been sent. */
    abandonedAfterPlaceOrder: string[];
    /** Confirmed orders not captured exactly once, cancelled ones captured at all. */
    chargedWrong: string[];
    /** Products whose stock on hand did not fall by exactly the units confirmed, or that kept units reserved. */
    stockWrong: string[];
    /** Final orders without exactly one notice of their end. */
    noticesWrong: string[];
    /** Confirmed orders whose shopper's cart was not emptied. */
    cartsNotEmptied: string[];
    /** Idempotency keys that made more than one order. */
    keysWithTwoOrders: string[];
  };
}

/** Reads the books of `checkouts` (stock compared with `stockBefore`, taken before the load began). */
export async function orderLedger(
  platform: TestPlatform,
  checkouts: readonly Checkout[],
  productIds: readonly string[],
  stockBefore: StockLevels,
): Promise<OrderLedger> {
  const placed = checkouts.filter((c) => c.orderId);
  const ids = placed.map((c) => c.orderId as string);
  const orders = await platform.query<{ id: string; status: string; idempotency_key: string }>(
    "orders",
    "select id, status, idempotency_key from orders where id = any($1) or idempotency_key = any($2)",
    [ids, checkouts.map((c) => c.idempotencyKey)],
  );
  const statusOf = new Map(orders.map((r) => [r.id, r.status]));
  const confirmed = ids.filter((id) => statusOf.get(id) === "CONFIRMED");
  const cancelled = ids.filter((id) => statusOf.get(id) === "CANCELLED");
  const payments = await platform.query<{ order_id: string; captured: string }>(
    "payments",
    "select order_id, count(*) filter (where status = 'CAPTURED') as captured from payments where order_id = any($1) group by order_id",
    [ids],
  );
  const captured = new Map(payments.map((p) => [p.order_id, Number(p.captured)]));
  const notices = await platform.query<{ order_id: string; kind: string; n: string }>(
    "notifications",
    "select order_id, kind, count(*) as n from notifications where order_id = any($1) group by order_id, kind",
    [ids],
  );
  const noticeCount = new Map(notices.map((n) => [`${n.order_id} ${n.kind}`, Number(n.n)]));
  const items = await platform.query<{ product_id: string; units: string }>(
    "orders",
    "select product_id, sum(quantity) as units from order_items where order_id = any($1) group by product_id",
    [confirmed],
  );
  const units = new Map(items.map((i) => [i.product_id, Number(i.units)]));
  const stockAfter = await stockLevels(platform, productIds);
  const ordersPerKey = new Map<string, number>();
  for (const o of orders) ordersPerKey.set(o.idempotency_key, (ordersPerKey.get(o.idempotency_key) ?? 0) + 1);

  return {
    placed: placed.length,
    confirmed,
    cancelled,
    problems: {
      unfinished: [...ids.filter((id) => statusOf.get(id) === "PENDING"), ...placed.filter((c) => !c.final).map((c) => `${c.orderId} (not seen final)`)],
      abandonedAfterPlaceOrder: checkouts.filter((c) => c.abandoned && c.firstError?.step === "place order").map((c) => `${c.idempotencyKey}: ${c.abandoned}`),
      chargedWrong: [
        ...confirmed.filter((id) => captured.get(id) !== 1).map((id) => `${id} confirmed, captured ${captured.get(id) ?? 0}×`),
        ...cancelled.filter((id) => (captured.get(id) ?? 0) !== 0).map((id) => `${id} cancelled, captured ${captured.get(id)}×`),
      ],
      stockWrong: productIds.flatMap((id) => {
        const before = stockBefore.get(id);
        const after = stockAfter.get(id);
        const expected = before && { onHand: before.onHand - (units.get(id) ?? 0), reserved: before.reserved };
        return expected && after && after.onHand === expected.onHand && after.reserved === expected.reserved
          ? []
          : [`${id}: expected ${JSON.stringify(expected)}, found ${JSON.stringify(after)}`];
      }),
      noticesWrong: [
        ...confirmed
          .filter((id) => noticeCount.get(`${id} order.confirmed`) !== 1)
          .map((id) => `${id}: ${noticeCount.get(`${id} order.confirmed`) ?? 0} confirmation notices`),
        ...cancelled
          .filter((id) => noticeCount.get(`${id} order.cancelled`) !== 1)
          .map((id) => `${id}: ${noticeCount.get(`${id} order.cancelled`) ?? 0} cancellation notices`),
      ],
      cartsNotEmptied: placed.filter((c) => c.final === "CONFIRMED" && !c.cartEmptiedAt).map((c) => c.orderId as string),
      keysWithTwoOrders: [...ordersPerKey].filter(([, n]) => n > 1).map(([key, n]) => `${key}: ${n} orders`),
    },
  };
}

/** A ledger with nothing wrong, to compare {@link OrderLedger.problems} with. */
export const noProblems: OrderLedger["problems"] = {
  unfinished: [],
  abandonedAfterPlaceOrder: [],
  chargedWrong: [],
  stockWrong: [],
  noticesWrong: [],
  cartsNotEmptied: [],
  keysWithTwoOrders: [],
};

/** How many of `items` fall under each key. */
export function count<T>(items: readonly T[], key: (t: T) => string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const item of items) counts[key(item)] = (counts[key(item)] ?? 0) + 1;
  return counts;
}
