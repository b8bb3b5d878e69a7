import { randomBytes } from "node:crypto";
import { status } from "@grpc/grpc-js";
import { RpcError } from "@bazaar/platform/errors";
import type {
  ChargeOutcome,
  ChargeRequest,
  CommitOutcome,
  PricedProduct,
  PricedProducts,
  RefundRequest,
  ReserveOutcome,
  SagaPorts,
  StockLine,
} from "../src/saga-ports.ts";

/**
 * Honest in-memory stand-ins for the saga's peers, keeping the promises the real services
 * make in their protos: inventory holds all lines or none, never oversells, and is
 * idempotent by order id; payments charge a payment method token once (its user's, unexpired,
 * unused; anything else is charged nothing), once per idempotency key (a different request
 * under a used key is an error; a replay without a token gets the key's payment), decline a
 * token of the declined test card, and refund only captured payments, once.
 */

type ReservationStatus = "reserved" | "committed" | "released" | "expired";

/** Inventory: stock on hand and reservations by order id. */
export class FakeInventory {
  readonly onHand = new Map<string, number>();
  readonly reservations = new Map<string, { lines: StockLine[]; status: ReservationStatus }>();

  setStock(productId: string, units: number): void {
    this.onHand.set(productId, units);
  }

  private reserved(productId: string): number {
    let n = 0;
    for (const r of this.reservations.values()) {
      if (r.status === "reserved") n += r.lines.find((l) => l.productId === productId)?.quantity ?? 0;
    }
    return n;
  }

  /** Units that can be bought now. */
  available(productId: string): number {
    return (this.onHand.get(productId) ?? 0) - this.reserved(productId);
  }

  reserve(orderId: string, lines: readonly StockLine[]): ReserveOutcome {
    if (lines.length === 0) throw new RpcError(status.INVALID_ARGUMENT, "items: at least one line");
    // The same order again: the same reservation, whatever became of it.
    if (this.reservations.has(orderId)) return { kind: "reserved" };
    const short = lines.filter((l) => this.available(l.productId) < l.quantity).map((l) => l.productId);
    if (short.length) return { kind: "out_of_stock", productIds: short, message: `not enough stock of product ${short[0]}` };
    this.reservations.set(orderId, { lines: lines.map((l) => ({ ...l })), status: "reserved" });
    return { kind: "reserved" };
  }

  commit(orderId: string): CommitOutcome {
    const r = this.reservations.get(orderId);
    if (!r) return { kind: "refused", message: `no reservation for order ${orderId}` };
    if (r.status === "committed") return { kind: "committed" };
    if (r.status !== "reserved") return { kind: "refused", message: `the reservation of order ${orderId} is ${r.status}` };
    r.status = "committed";
    for (const l of r.lines) this.onHand.set(l.productId, (this.onHand.get(l.productId) ?? 0) - l.quantity);
    return { kind: "committed" };
  }

  release(orderId: string): void {
    const r = this.reservations.get(orderId);
    if (!r || r.status === "released" || r.status === "expired") return;
    if (r.status === "committed") throw new RpcError(status.FAILED_PRECONDITION, `the reservation of order ${orderId} is committed`);
    r.status = "released";
  }

  /** The hold runs out, as inventory's expiry sweeper would do. */
  expire(orderId: string): void {
    const r = this.reservations.get(orderId);
    if (r?.status === "reserved") r.status = "expired";
  }
}

interface FakePayment {
  id: string;
  orderId: string;
  amountMinor: number;
  status: "CAPTURED" | "FAILED" | "REFUNDED";
  reason: string;
  request: string;
}

/** A payment method token as payments keeps it. */
interface FakePaymentMethod {
  userId: string;
  /** A token of the declined test card (4000 0000 0000 0002). */
  declined: boolean;
  expiresAt: number;
  used: boolean;
}

/** Payments: payment method tokens, and charges and refunds by idempotency key. */
export class FakePayments {
  readonly byKey = new Map<string, FakePayment>();
  readonly refundKeys = new Map<string, string>();
  readonly methods = new Map<string, FakePaymentMethod>();
  /** Charges that reached the processor (a replay with a used key does not). */
  processorCharges = 0;

  /** A token for `userId`, as CreatePaymentMethod issues it: of the good test card, or the declined one. */
  tokenize(userId: string, card: "good" | "declined" = "good", ttlMs = 15 * 60_000): string {
    const token = `pm_${randomBytes(32).toString("base64url")}`;
    this.methods.set(token, { userId, declined: card === "declined", expiresAt: Date.now() + ttlMs, used: false });
    return token;
  }

  /** Makes a token unusable as if its time had passed. */
  expire(token: string): void {
    const method = this.methods.get(token);
    if (method) method.expiresAt = Date.now() - 1;
  }

  charge(req: ChargeRequest): ChargeOutcome {
    if (req.amountMinor <= 0) throw new RpcError(status.INVALID_ARGUMENT, "amount.amount_minor: must be positive");
    const fingerprint = JSON.stringify([req.orderId, req.amountMinor, req.currency, req.paymentMethodToken ?? "", req.userId]);
    const existing = this.byKey.get(req.idempotencyKey);
    if (existing) {
      const replay = req.paymentMethodToken === undefined && existing.orderId === req.orderId && existing.amountMinor === req.amountMinor;
      if (existing.request !== fingerprint && !replay) throw new RpcError(status.FAILED_PRECONDITION, "idempotency_key: used for a different charge");
      return this.outcome(existing);
    }
    if (req.paymentMethodToken === undefined) throw new RpcError(status.INVALID_ARGUMENT, "payment_method_token: is required");
    const method = this.methods.get(req.paymentMethodToken);
    if (!method || method.userId !== req.userId)
      return { kind: "payment_method_unusable", message: "payment_method_token: no payment method of this user has this token" };
    if (method.used) return { kind: "payment_method_unusable", message: "payment_method_token: was used for a charge already" };
    if (method.expiresAt <= Date.now()) return { kind: "payment_method_unusable", message: "payment_method_token: has expired" };
    method.used = true;
    this.processorCharges++;
    const payment: FakePayment = {
      id: crypto.randomUUID(),
      orderId: req.orderId,
      amountMinor: req.amountMinor,
      status: method.declined ? "FAILED" : "CAPTURED",
      reason: method.declined ? "Your card was declined." : "",
      request: fingerprint,
    };
    this.byKey.set(req.idempotencyKey, payment);
    return this.outcome(payment);
  }

  private outcome(p: FakePayment): ChargeOutcome {
    return p.status === "FAILED" ? { kind: "declined", paymentId: p.id, reason: p.reason } : { kind: "captured", paymentId: p.id };
  }

  refund(req: RefundRequest): void {
    const done = this.refundKeys.get(req.idempotencyKey);
    if (done) {
      if (done !== req.paymentId) throw new RpcError(status.FAILED_PRECONDITION, "idempotency_key: used for another refund");
      return;
    }
    const payment = [...this.byKey.values()].find((p) => p.id === req.paymentId);
    if (!payment) throw new RpcError(status.NOT_FOUND, `no payment ${req.paymentId}`);
    if (payment.status !== "CAPTURED") throw new RpcError(status.FAILED_PRECONDITION, `payment ${req.paymentId} is ${payment.status}`);
    payment.status = "REFUNDED";
    this.refundKeys.set(req.idempotencyKey, req.paymentId);
  }

  /** The payments of an order. */
  of(orderId: string): FakePayment[] {
    return [...this.byKey.values()].filter((p) => p.orderId === orderId);
  }
}

/** Catalog: products by id. */
export class FakeCatalog {
  readonly products = new Map<string, PricedProduct>();

  add(name: string, unitPriceMinor: number, currency = "USD"): PricedProduct {
    const p = { id: crypto.randomUUID(), name, unitPriceMinor, currency };
    this.products.set(p.id, p);
    return p;
  }

  priceLines(ids: readonly string[]): PricedProducts {
    const found = new Map<string, PricedProduct>();
    const missing: string[] = [];
    for (const id of ids) {
      const p = this.products.get(id);
      if (p) found.set(id, p);
      else missing.push(id);
    }
    return { found, missing };
  }
}

type PortName = keyof SagaPorts;

/** A hook run around a port call: before it (may throw or wait), and after its effect (may hang, as a crash would). */
export interface PortHook {
  before?: () => Promise<void> | void;
  after?: () => Promise<void> | void;
}

/**
 * The fakes behind the SagaPorts interface, with every call counted and hooks for faults:
 * `failNext("reserve", 2)` fails the next two reserves with UNAVAILABLE before they reach
 * inventory; `hook("charge", { after })` runs after the charge took effect.
 */
export class FakePorts implements SagaPorts {
  readonly inventory = new FakeInventory();
  readonly payments = new FakePayments();
  readonly catalog = new FakeCatalog();
  readonly calls: { port: PortName; orderId?: string }[] = [];
  private readonly hooks = new Map<PortName, PortHook[]>();

  /** Runs `hook` around the next call of `port` (once). */
  hook(port: PortName, hook: PortHook): void {
    this.hooks.set(port, [...(this.hooks.get(port) ?? []), hook]);
  }

  /** Fails the next `times` calls of `port` with `code` before they take effect. */
  failNext(port: PortName, times: number, code = status.UNAVAILABLE): void {
    for (let i = 0; i < times; i++) {
      this.hook(port, {
        before: () => {
          throw new RpcError(code, `${port} is failing on purpose`);
        },
      });
    }
  }

  clearHooks(): void {
    this.hooks.clear();
  }

  count(port: PortName, orderId?: string): number {
    return this.calls.filter((c) => c.port === port && (orderId === undefined || c.orderId === orderId)).length;
  }

  private async call<T>(port: PortName, orderId: string | undefined, effect: () => T): Promise<T> {
    this.calls.push({ port, orderId });
    const hook = this.hooks.get(port)?.shift();
    await Promise.resolve();
    await hook?.before?.();
    const result = effect();
    await hook?.after?.();
    return result;
  }

  priceLines(ids: readonly string[]) {
    return this.call("priceLines", undefined, () => this.catalog.priceLines(ids));
  }
  reserve(orderId: string, lines: readonly StockLine[]) {
    return this.call("reserve", orderId, () => this.inventory.reserve(orderId, lines));
  }
  commit(orderId: string) {
    return this.call("commit", orderId, () => this.inventory.commit(orderId));
  }
  release(orderId: string) {
    return this.call("release", orderId, () => this.inventory.release(orderId));
  }
  charge(req: ChargeRequest) {
    return this.call("charge", req.orderId, () => this.payments.charge(req));
  }
  refund(req: RefundRequest) {
    return this.call("refund", req.idempotencyKey.replace(/^refund:/, ""), () => this.payments.refund(req));
  }
}

/** A promise a test opens when it wants: for holding a port call in flight. */
export function gate(): { wait: () => Promise<void>; open: () => void } {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { wait: () => opened, open };
}
