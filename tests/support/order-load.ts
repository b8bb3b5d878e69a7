/**
 * A steady order load for fault tests. Shoppers (signed-in users) start checkouts at a fixed
 * rate (open loop: a tick with no free shopper is counted as skipped, never delayed), and each
 * checkout does what the storefront and the BFF do: put a product in the cart, tokenize the
 * card, place the order; when PlaceOrder fails for a reason that may pass (UNAVAILABLE,
 * DEADLINE_EXCEEDED), ask again with the same idempotency key until answered; then wait for
 * the order to be final and, once confirmed, for the cart to be emptied. Every call's outcome
 * is recorded for the figures; every wait is bounded.
 */
import { status } from "@grpc/grpc-js";
import { RpcError } from "@bazaar/platform/errors";
import { eventually } from "@bazaar/testkit/eventually";
import type { BearerAuth } from "@bazaar/testkit/fixtures";
import type { PlatformClients } from "@bazaar/testkit/test-platform";
import { OrderStatus } from "@bazaar/proto/bazaar/orders/v1/orders_pb";

/** A signed-in user the load shops as. */
export interface Shopper {
  id: string;
  auth: BearerAuth;
}

/** The step of a checkout a call belongs to. */
export type Step = "add to cart" | "tokenize" | "place order";

/** One failed call: its step, status code name and how long it took to fail. */
export interface CallError {
  step: Step;
  code: string;
  message: string;
  ms: number;
  /** When it failed (Date.now()). */
  at: number;
}

/** One checkout: what its first try answered and where it ended. Times are Date.now() values. */
export interface Checkout {
  shopper: string;
  idempotencyKey: string;
  startedAt: number;
  /** The first try's error (the checkout is then either abandoned or asked again). */
  firstError?: CallError;
  /** Errors of the same-key retries. */
  retryErrors: CallError[];
  /** When PlaceOrder first answered with the order. */
  acceptedAt?: number;
  /** Whether that answer came on the first try of PlaceOrder. */
  acceptedFirstTry?: boolean;
  orderId?: string;
  final?: "CONFIRMED" | "CANCELLED";
  finalAt?: number;
  cartEmptiedAt?: number;
  /** Why the checkout ended without a final order (a step that failed for good, or a bound reached). */
  abandoned?: string;
}

/** Settings of an {@link OrderLoad}. */
export interface OrderLoadOptions {
  /** Checkouts started per second. */
  perSecond: number;
  /** The deadline of every call, as a client sets it. */
  deadlineMs: number;
  /** How long a checkout keeps asking with its key, and waits for the order and the cart (each). */
  patienceMs: number;
  /** The card to tokenize. */
  card: { number: string; expiryMonth: number; expiryYear: number; cvc: string };
}

const transient = new Set([status.UNAVAILABLE, status.DEADLINE_EXCEEDED]);

function callError(step: Step, err: unknown, started: number): CallError {
  const at = Date.now();
  if (err instanceof RpcError) return { step, code: err.codeName, message: err.message, ms: at - started, at };
  return { step, code: `not gRPC (${(err as Error)?.name ?? typeof err})`, message: String((err as Error)?.message ?? err), ms: at - started, at };
}

/**
 * The test kit's `eventually`, asked every 200 ms for up to `withinMs`, resolving undefined
 * instead of failing when the time is up: a checkout that waited in vain is recorded, not thrown.
 */
function within<T>(what: string, check: () => Promise<T | undefined>, withinMs: number): Promise<T | undefined> {
  return eventually(check, { what, timeoutMs: withinMs, intervalMs: 200 }).then(
    (value) => value as T,
    () => undefined,
  );
}

/** The running load: start it, inject a fault, stop it, read {@link checkouts}. */
export class OrderLoad {
  readonly checkouts: Checkout[] = [];
  /** Ticks at which every shopper was busy. */
  skipped = 0;
  private readonly busy = new Set<string>();
  private readonly running = new Set<Promise<void>>();
  private timer: ReturnType<typeof setInterval> | undefined;
  private next = 0;
  private sequence = 0;

  constructor(
    private readonly clients: PlatformClients,
    private readonly shoppers: readonly Shopper[],
    private readonly productIds: readonly string[],
    private readonly options: OrderLoadOptions,
  ) {}

  start(): void {
    this.timer = setInterval(() => this.tick(), 1000 / this.options.perSecond);
  }

  /** Stops starting checkouts and waits until those under way have ended (each is bounded). */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    await Promise.all(this.running);
  }

  private tick(): void {
    const free = this.shoppers.filter((s) => !this.busy.has(s.id));
    if (!free.length) {
      this.skipped++;
      return;
    }
    const shopper = free[this.next++ % free.length]!;
    const productId = this.productIds[this.sequence % this.productIds.length]!;
    const checkout: Checkout = { shopper: shopper.id, idempotencyKey: `fault-${Date.now()}-${this.sequence++}`, startedAt: Date.now(), retryErrors: [] };
    this.checkouts.push(checkout);
    this.busy.add(shopper.id);
    const run = this.checkout(shopper, productId, checkout)
      .catch((err: Error) => {
        checkout.abandoned = `the load itself failed: ${err.message}`;
      })
      .finally(() => {
        this.busy.delete(shopper.id);
        this.running.delete(run);
      });
    this.running.add(run);
  }

  private async call<T>(step: Step, fn: (timeoutMs: number) => Promise<T>): Promise<{ ok: T } | { error: CallError; transient: boolean }> {
    const started = Date.now();
    try {
      return { ok: await fn(this.options.deadlineMs) };
    } catch (err) {
      return { error: callError(step, err, started), transient: err instanceof RpcError && transient.has(err.code) };
    }
  }

  private async checkout(shopper: Shopper, productId: string, checkout: Checkout): Promise<void> {
    const { cart, payments, orders } = this.clients;
    const { auth } = shopper;
    const added = await this.call("add to cart", (timeoutMs) => cart.addItem({ productId, quantity: 1 }, { ...auth, timeoutMs }));
    if ("error" in added) {
      checkout.firstError = added.error;
      checkout.abandoned = "the product could not be put in the cart";
      return;
    }
    const lines = added.ok.cart!.lines.map((l) => ({ productId: l.productId, quantity: l.quantity }));
    const expectedTotal = added.ok.cart!.total;
    const place = async (): Promise<{ orderId: string } | { error: CallError; transient: boolean }> => {
      const token = await this.call("tokenize", (timeoutMs) => payments.createPaymentMethod({ card: this.options.card }, { ...auth, timeoutMs }));
      if ("error" in token) return token;
      const placed = await this.call("place order", (timeoutMs) =>
        orders.placeOrder(
          { idempotencyKey: checkout.idempotencyKey, lines, expectedTotal, paymentMethodToken: token.ok.paymentMethod!.token },
          { ...auth, timeoutMs },
        ),
      );
      return "error" in placed ? placed : { orderId: placed.ok.order!.id };
    };

    // The first try; then, as the BFF does, the same key again while the failure may pass.
    let answer = await place();
    if ("error" in answer) {
      checkout.firstError = answer.error;
      // A failure before PlaceOrder was sent placed nothing: the storefront shows it and the shopper tries again later.
      if (answer.error.step !== "place order") {
        checkout.abandoned = `${answer.error.step} failed`;
        return;
      }
      const until = Date.now() + this.options.patienceMs;
      while ("error" in answer && answer.transient && Date.now() < until) {
        await Bun.sleep(500);
        answer = await place();
        if ("error" in answer) checkout.retryErrors.push(answer.error);
      }
      if ("error" in answer) {
        checkout.abandoned = `PlaceOrder did not answer with the order: ${answer.error.code} ${answer.error.message}`;
        return;
      }
    }
    checkout.acceptedAt = Date.now();
    checkout.acceptedFirstTry = !checkout.firstError;
    checkout.orderId = answer.orderId;

    const final = await within(
      "the order to be final",
      async () => {
        const { order } = await orders.getOrder({ id: answer.orderId }, { ...auth, timeoutMs: this.options.deadlineMs });
        if (order?.status === OrderStatus.CONFIRMED) return "CONFIRMED" as const;
        if (order?.status === OrderStatus.CANCELLED) return "CANCELLED" as const;
        return undefined;
      },
      this.options.patienceMs,
    );
    if (!final) {
      checkout.abandoned = "the order was not final in time";
      return;
    }
    checkout.final = final;
    checkout.finalAt = Date.now();
    if (final === "CONFIRMED") {
      // The cart service empties the cart when it hears OrderConfirmed.
      const emptied = await within(
        "the cart to be emptied",
        async () => ((await cart.getCart({}, { ...auth, timeoutMs: this.options.deadlineMs })).cart?.itemCount === 0 ? true : undefined),
        this.options.patienceMs,
      );
      if (emptied) checkout.cartEmptiedAt = Date.now();
    } else {
      // A cancelled order leaves the cart as it was: this shopper gives up on it.
      await within(
        "the cart to be cleared",
        async () => {
          await cart.clearCart({}, { ...auth, timeoutMs: this.options.deadlineMs });
          return true;
        },
        this.options.patienceMs,
      );
    }
  }
}
