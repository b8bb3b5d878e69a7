import { status } from "@grpc/grpc-js";
import { createHash } from "node:crypto";
import { Hono } from "hono";
import { z } from "zod";
import type { RedisConnection } from "@bazaar/platform/cache";
import { RpcError } from "@bazaar/platform/errors";
import { log } from "@bazaar/platform/log";
import { SpanKind, withSpan } from "@bazaar/platform/telemetry";
import { type AppEnv, requireUser } from "../auth.ts";
import { apiError } from "../errors.ts";
import { orderView } from "../shape.ts";
import type { Upstreams } from "../api-routes.ts";
import { valid } from "../validate.ts";

const checkoutBody = z.object({
  idempotencyKey: z
    .string({ error: "is required" })
    .min(8, "must be 8 to 128 characters; send a new random key per checkout (a UUID will do)")
    .max(128, "must be 8 to 128 characters")
    .regex(/^[\x21-\x7e]+$/, "must be printable ASCII without spaces"),
  card: z.object(
    {
      number: z
        .string({ error: "is required" })
        .regex(/^[\d ]+$/, "must be digits (spaces allowed)")
        .refine((n) => n.replaceAll(" ", "").length >= 12 && n.replaceAll(" ", "").length <= 19, "must have 12 to 19 digits"),
      expiryMonth: z.number({ error: "must be a number" }).int("must be a whole number").min(1, "must be between 1 and 12").max(12, "must be between 1 and 12"),
      expiryYear: z
        .number({ error: "must be a number" })
        .int("must be a whole number")
        .min(1000, "must be a four-digit year such as 2030")
        .max(9999, "must be a four-digit year such as 2030"),
      cvc: z.string({ error: "is required" }).regex(/^\d{3,4}$/, "must be 3 or 4 digits"),
    },
    { error: "is required" },
  ),
  // The total the shopper was shown (the cart's total as GET /api/cart gave it): a price that
  // changed since stops the order before payment (409 price_changed).
  expectedTotal: z.object(
    {
      currency: z.string({ error: "is required" }).regex(/^[A-Z]{3}$/, "must be an ISO 4217 code such as USD"),
      amountMinor: z.number({ error: "must be a number" }).int("must be a whole number of minor units").min(0, "must not be negative"),
    },
    { error: "is required: send the cart total the shopper was shown" },
  ),
});

/** A line of an order, as PlaceOrder takes it. */
interface OrderLine {
  productId: string;
  quantity: number;
}

/** A day: how long the BFF remembers which order a checkout key placed. */
const rememberSeconds = 24 * 60 * 60;

/**
 * Which order each checkout key placed, per user, in Redis: a resubmit after the order was
 * confirmed (and the cart emptied by it) still gets its order back. Best effort: without
 * Redis, orders' own idempotency still prevents a second order while the cart is unchanged.
 */
class CheckoutMemo {
  constructor(private readonly redis: RedisConnection | undefined) {}

  private key(userId: string, idempotencyKey: string, what: "checkout" | "checkout-lines" = "checkout"): string {
    return `${this.redis?.keyPrefix ?? ""}bff:${what}:${userId}:${createHash("sha256").update(idempotencyKey).digest("base64url")}`;
  }

  private async call<T>(command: string, fn: (redis: RedisConnection) => Promise<T>, fallback: T): Promise<T> {
    const redis = this.redis;
    if (!redis) return fallback;
    try {
      return await withSpan(`${command} checkout`, { kind: SpanKind.CLIENT, attributes: { "db.system.name": "redis", "db.operation.name": command } }, () =>
        fn(redis),
      );
    } catch (err) {
      log.warn("checkout memo unavailable", { command, err: (err as Error).message });
      return fallback;
    }
  }

  /** The order a key placed, if remembered. */
  orderOf(userId: string, idempotencyKey: string): Promise<string | undefined> {
    return this.call("GET", async (r) => (await r.client.get(this.key(userId, idempotencyKey))) ?? undefined, undefined);
  }

  /**
   * The lines a key's first attempt ordered, if remembered. A retry must be the same request:
   * after an unconfirmed attempt the order may have been confirmed and the cart emptied by it,
   * or the cart changed in another tab, and orders answers the key only for the same lines.
   */
  linesOf(userId: string, idempotencyKey: string): Promise<OrderLine[] | undefined> {
    return this.call(
      "GET",
      async (r) => {
        const text = await r.client.get(this.key(userId, idempotencyKey, "checkout-lines"));
        return text ? (JSON.parse(text) as OrderLine[]) : undefined;
      },
      undefined,
    );
  }

  /** Remembers the lines a key orders (the first attempt's win). */
  async rememberLines(userId: string, idempotencyKey: string, lines: OrderLine[]): Promise<void> {
    await this.call(
      "SET",
      (r) =>
        r.client.set(this.key(userId, idempotencyKey, "checkout-lines"), JSON.stringify(lines), {
          condition: "NX",
          expiration: { type: "EX", value: rememberSeconds },
        }),
      null,
    );
  }

  /** Remembers the order a key placed; false if it was remembered already (a concurrent twin got there first). */
  remember(userId: string, idempotencyKey: string, orderId: string): Promise<boolean> {
    return this.call(
      "SET",
      async (r) =>
        (await r.client.set(this.key(userId, idempotencyKey), orderId, { condition: "NX", expiration: { type: "EX", value: rememberSeconds } })) !== null,
      true,
    );
  }
}

/**
 * What the shopper reads when orders did not answer: the order may have been placed (a lost
 * answer, a crash after the commit), so this is neither a failure nor a success yet.
 */
const orderUnconfirmedMessage =
  "We could not confirm your order yet. We are checking: if it went through, it appears in a moment, and you are never charged twice for it.";

/** PlaceOrder answers after which the order may or may not exist: asked again with the same key. */
const uncertainCodes: ReadonlySet<status> = new Set([status.UNAVAILABLE, status.DEADLINE_EXCEEDED]);
/** Attempts at PlaceOrder per checkout request, and the pause before the n-th retry (n × this). */
const placeAttempts = 3;
const retryPauseMs = 250;
/** An attempt needs at least this much of the budget left to be worth making. */
const minAttemptMs = 500;

/** Orders did not answer any attempt: whether the order exists is not known yet. */
class OrderUnconfirmed extends Error {
  constructor(
    readonly attempts: number,
    cause: RpcError,
  ) {
    super(`${cause.codeName}: ${cause.message}`);
  }
}

/**
 * Places the order, asking again with the same idempotency key when the answer left it
 * uncertain (UNAVAILABLE, DEADLINE_EXCEEDED): orders returns the order the key placed, or
 * places it now, never a second one. All attempts share `budgetMs`. Throws
 * {@link OrderUnconfirmed} when none got an answer; any other error as it is.
 */
async function placeAskingAgain<T>(place: (timeoutMs: number) => Promise<T>, budgetMs: number): Promise<T> {
  const deadline = Date.now() + budgetMs;
  for (let attempt = 1; ; attempt++) {
    try {
      return await place(Math.max(1, deadline - Date.now()));
    } catch (err) {
      if (!(err instanceof RpcError && uncertainCodes.has(err.code))) throw err;
      const pause = retryPauseMs * attempt;
      if (attempt >= placeAttempts || Date.now() + pause + minAttemptMs > deadline) throw new OrderUnconfirmed(attempt, err);
      await new Promise((resolve) => setTimeout(resolve, pause));
    }
  }
}

/**
 * POST /api/checkout: orders what is in the cart, at the total the shopper was shown
 * (`expectedTotal`; a changed price or cart is 409 price_changed and nothing is ordered). The
 * client's idempotencyKey makes a double-click or a retry return the same order (201 when
 * placed, 200 when it is the same one again). The answer comes once the order is final or after orders' wait, whichever is first;
 * a PENDING order's outcome arrives on /api/events.
 *
 * The card goes to payments only: it is tokenized there as the shopper (their access token
 * binds the token to them), and orders gets the single-use token. A card payments refuses
 * (a typo, an expired card) is a 400 naming the field, before any order exists. A retry
 * tokenizes again; orders answers it with the order the key placed first, and the new token
 * expires unused.
 *
 * When orders does not answer (down, restarting, too slow), the BFF asks again with the same
 * key within the checkout's time budget, then answers 503 `order_unconfirmed`: the page keeps
 * asking with the same key and shows the order once it is there.
 */
export function checkoutRoutes(
  { cart, orders, payments }: Pick<Upstreams, "cart" | "orders" | "payments">,
  redis: RedisConnection | undefined,
  checkoutTimeoutMs: number,
) {
  const memo = new CheckoutMemo(redis);
  return new Hono<AppEnv>().use(requireUser).post("/", valid("json", checkoutBody), async (c) => {
    const { idempotencyKey, card, expectedTotal } = c.req.valid("json");
    const userId = c.var.user.id;
    const auth = await c.var.auth();
    const known = await memo.orderOf(userId, idempotencyKey);
    if (known) {
      const { order } = await orders.getOrder({ id: known }, auth);
      if (order) return c.json({ order: orderView(order) }, 200);
    }
    let lines = await memo.linesOf(userId, idempotencyKey);
    if (!lines) {
      const { cart: current } = await cart.getCart({}, auth);
      if (!current?.lines.length) return apiError(c, 409, "failed_precondition", "Your cart is empty: add something to it before checking out.");
      lines = current.lines.map((l) => ({ productId: l.productId, quantity: l.quantity }));
      await memo.rememberLines(userId, idempotencyKey, lines);
    }
    const { paymentMethod } = await payments.createPaymentMethod({ card }, auth);
    if (!paymentMethod?.token) throw new Error("payments answered CreatePaymentMethod without a token");
    const request = {
      idempotencyKey,
      lines,
      paymentMethodToken: paymentMethod.token,
      expectedTotal: { currencyCode: expectedTotal.currency, amountMinor: BigInt(expectedTotal.amountMinor) },
    };
    const order = await placeAskingAgain((timeoutMs) => orders.placeOrder(request, { ...auth, timeoutMs }).then((r) => r.order), checkoutTimeoutMs).catch(
      (err: unknown) => {
        if (!(err instanceof OrderUnconfirmed)) throw err;
        log.warn("checkout unconfirmed: orders did not answer; the shopper's page asks again with the same key", {
          error: err.message,
          attempts: err.attempts,
        });
        return undefined;
      },
    );
    if (order === undefined) return apiError(c, 503, "order_unconfirmed", orderUnconfirmedMessage);
    if (!order) throw new Error("orders answered PlaceOrder without an order");
    const placedNow = await memo.remember(userId, idempotencyKey, order.id);
    return c.json({ order: orderView(order) }, placedNow ? 201 : 200);
  });
}
