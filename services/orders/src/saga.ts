import { and, asc, eq, inArray, isNull, lte, ne, or, type SQL, sql, TransactionRollbackError } from "drizzle-orm";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import { currentCallBudget, outsideCall } from "@bazaar/platform/call-budget";
import type { Database } from "@bazaar/platform/db";
import { log } from "@bazaar/platform/log";
import { extractContext, withSpan } from "@bazaar/platform/telemetry";
import { events } from "@bazaar/platform/messaging/events";
import { enqueueEvent, type OutboxSignal } from "@bazaar/platform/messaging/outbox";
import type * as schema from "./db/schema.ts";
import { type OrderItemRow, type OrderRow, orderItems, orders, type SagaRow, sagas, type SagaStep } from "./db/schema.ts";
import { type SagasInFlight, sagaDuration, sagaOutcomes, sagaRetries, sagaStepDuration, sagasInFlightReading } from "./metrics.ts";
import { chargeKey, describeError, isTransient, refundKey, type SagaPorts } from "./saga-ports.ts";

/** What {@link SagaExecutor.waitForFinal} leaves of a caller's deadline to read the order and answer. */
const answerMarginMs = 250;

/** The orders service's database. */
export type OrdersDatabase = Database<typeof schema>;

/** Options of {@link SagaExecutor}. */
export interface SagaExecutorOptions {
  /** How long a claim holds a saga (renewed at every step). */
  leaseMs: number;
  /** How often {@link SagaExecutor.start}'s loop looks for due sagas. */
  pollMs: number;
  /** The first retry delay after a transient failure; doubled per attempt… */
  retryBaseMs: number;
  /** …up to this. */
  retryMaxMs: number;
  /** Sagas one executor works on at once. */
  maxConcurrent?: number;
  /**
   * Who this executor is across restarts, e.g. "<hostname>:<gRPC port>": at most one live
   * process can have it (the port is bound). A restarted process takes back the sagas its
   * previous incarnation held at once ({@link SagaExecutor.reclaimFromPreviousRun}) instead
   * of waiting for their leases to run out. Unset: leases only.
   */
  instanceId?: string;
}

/** A cancellation: a code for the metric's label, and the reason the shopper reads. */
interface Cancellation {
  code: string;
  reason: string;
}

const cancelledByUser: Cancellation = { code: "cancelled_by_user", reason: "You cancelled the order." };

/** What one attempt at a step came to. */
type StepResult =
  /** A cancellation honoured before a forward step that was never attempted. */
  | { kind: "cancel"; attemptedBefore: boolean }
  | { kind: "reserved" }
  | { kind: "out_of_stock"; names: string[] }
  | { kind: "reserve_failed"; error: string }
  | { kind: "captured"; paymentId: string }
  | { kind: "declined"; reason: string }
  /** Payments would not charge the token (expired, used, not the shopper's): nothing was taken. */
  | { kind: "payment_method_unusable"; error: string }
  | { kind: "charge_failed"; error: string }
  | { kind: "committed" }
  | { kind: "commit_refused"; error: string }
  | { kind: "refunded" }
  | { kind: "released" }
  /** Worth trying again later: the same step, never the next one. */
  | { kind: "retry"; error: string };

/** Where a saga goes after a step's result. */
interface Transition {
  step: SagaStep;
  /** Set when the saga turns to compensating (the first reason is kept). */
  cancel?: Cancellation;
  /** The captured payment, to record on the order. */
  paymentId?: string;
  /** The order is paid for and its stock sold. */
  confirmed?: boolean;
}

const forwardSteps: readonly SagaStep[] = ["reserve", "charge", "commit"];

/**
 * What an executor keeps in memory of a saga while it holds the saga's lease: the fields its
 * decisions read. Only the lease holder writes them, so the copy stays true while the lease
 * is held, except `cancelRequested`, which CancelOrder may raise at any time: every write is
 * fenced on the value this copy has, and a refused write reads it again (see `record`).
 */
export type HeldSaga = Pick<SagaRow, "orderId" | "step" | "attempts" | "cancelRequested" | "cancelReason" | "cancelCode" | "paymentMethodToken">;

/**
 * What it keeps of the saga's order (written only by the saga after it was placed). The lines
 * are needed by the reserve step only: a saga taken over after it reads them then.
 */
export interface HeldOrder extends Pick<OrderRow, "id" | "userId" | "currency" | "totalMinor" | "paymentId"> {
  items?: Pick<OrderItemRow, "productId" | "quantity" | "name">[];
}

/**
 * The saga's state machine: from the state a saga is in and what its step came to, the next
 * step. Compensation runs in reverse of what was done: a charge is refunded, then the
 * reservation released.
 */
function transition(saga: HeldSaga, order: HeldOrder, result: Exclude<StepResult, { kind: "retry" }>): Transition {
  const refundOrRelease: SagaStep = order.paymentId ? "refund" : "release";
  switch (result.kind) {
    case "cancel":
      // Only what earlier steps did is undone (and a reserve that may have happened).
      if (saga.step === "reserve") return { step: result.attemptedBefore ? "release" : "done", cancel: cancelledByUser };
      if (saga.step === "charge") return { step: "release", cancel: cancelledByUser };
      return { step: refundOrRelease, cancel: cancelledByUser };
    case "reserved":
      if (saga.cancelRequested) return { step: "release", cancel: cancelledByUser };
      return { step: order.totalMinor > 0 ? "charge" : "commit" };
    case "out_of_stock":
      // All lines or none: nothing is held, so there is nothing to release.
      return { step: "done", cancel: { code: "out_of_stock", reason: `Not enough stock of ${listNames(result.names)}.` } };
    case "reserve_failed":
      return { step: "release", cancel: { code: "reserve_failed", reason: "Your items could not be reserved; you have not been charged." } };
    case "captured":
      if (saga.cancelRequested) return { step: "refund", paymentId: result.paymentId, cancel: cancelledByUser };
      return { step: "commit", paymentId: result.paymentId };
    case "declined":
      return {
        step: "release",
        cancel: saga.cancelRequested ? cancelledByUser : { code: "payment_declined", reason: result.reason || "Your card was declined." },
      };
    case "payment_method_unusable":
      return {
        step: "release",
        cancel: saga.cancelRequested
          ? cancelledByUser
          : {
              code: "payment_method_unusable",
              reason: "Your payment details expired before the order could be paid; you have not been charged. Please check out again.",
            },
      };
    case "charge_failed":
      return { step: "release", cancel: { code: "payment_failed", reason: "Your payment could not be processed; you have not been charged." } };
    case "committed":
      return { step: "done", confirmed: true };
    case "commit_refused":
      return {
        step: refundOrRelease,
        cancel: {
          code: "reservation_expired",
          reason: order.paymentId
            ? "Your items were no longer held for you when the payment went through; the payment has been refunded."
            : "Your items were no longer held for you.",
        },
      };
    case "refunded":
      return { step: "release" };
    case "released":
      return { step: "done" };
  }
}

function listNames(names: string[]): string {
  if (names.length <= 1) return names[0] ?? "one of the products";
  return `${names.slice(0, -1).join(", ")} and ${names.at(-1)}`;
}

const msFromNow = (ms: number) => sql`now() + ${Math.round(ms)} * interval '1 millisecond'`;

/**
 * Runs order sagas, one step at a time, with their state in Postgres.
 *
 * - A step's outcome, the next step and any event are committed in one transaction.
 * - Claiming takes `FOR UPDATE SKIP LOCKED` and sets a lease (lease_until, lease_owner), so
 *   two executors, in one process or in two replicas, never work on the same saga at once; a
 *   crashed executor's sagas are taken over once their lease has passed. Recording an
 *   outcome checks the lease is still this claim's (fencing), so a step that outlived its
 *   lease cannot overwrite the work of the executor that took over.
 * - A step's attempt count is committed before its remote call, so an executor resuming a
 *   saga knows whether the call may already have happened: then it replays the call (every
 *   call is idempotent by order) rather than skipping it or compensating blindly.
 * - Transient failures are retried with capped exponential backoff; a step is never skipped.
 * - A requested cancellation is honoured before the next forward step.
 */
export class SagaExecutor {
  private timer: ReturnType<typeof setInterval> | undefined;
  private stopping = false;
  private polling = false;
  private readonly inFlight = new Set<Promise<unknown>>();
  private readonly waiters = new Map<string, Set<() => void>>();
  private readonly maxConcurrent: number;
  /** Every lease this executor takes starts with this: its instance (if any), then this run's id. */
  private readonly ownerPrefix: string;

  constructor(
    private readonly database: OrdersDatabase,
    private readonly ports: SagaPorts,
    private readonly outbox: OutboxSignal,
    private readonly options: SagaExecutorOptions,
  ) {
    this.maxConcurrent = options.maxConcurrent ?? 16;
    this.ownerPrefix = `${options.instanceId ? `${options.instanceId}/` : ""}${crypto.randomUUID()}/`;
    sagasInFlightReading.from(() => this.countInFlight());
  }

  /** Sagas not done and the age of the oldest (the partial index of the poller covers them). */
  private async countInFlight(): Promise<SagasInFlight> {
    const [row] = await this.database.db
      .select({ count: sql<number>`count(*)::int`, oldest: sql<number>`coalesce(extract(epoch from now() - min(${sagas.createdAt})), 0)::float8` })
      .from(sagas)
      .where(ne(sagas.step, "done"));
    return { count: row?.count ?? 0, oldestSeconds: row?.oldest ?? 0 };
  }

  /** Starts the loop that resumes due sagas: retries, and sagas of crashed executors. */
  start(): this {
    this.timer ??= setInterval(() => void this.poll(), this.options.pollMs);
    return this;
  }

  /**
   * Stops taking work. Steps in flight finish and are recorded; a saga between steps is let
   * go at once (for another replica to continue); anything else resumes when its lease ends.
   */
  async stop(): Promise<void> {
    this.stopping = true;
    this.stopPolling();
    await Promise.allSettled([...this.inFlight]);
  }

  /** Stops looking for due sagas (start() resumes); work in hand goes on. */
  stopPolling(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /**
   * Works on one order's saga now, if it is due and no one holds it; resolves when this
   * executor stops working on it (final, waiting for a retry, or taken over).
   */
  runNow(orderId: string): Promise<void> {
    if (this.stopping) return Promise.resolve();
    // The saga outlives the call that asked for it: it must not be cancelled with that call.
    return outsideCall(() =>
      this.track(
        (async () => {
          for (const saga of await this.claim(1, orderId)) await this.driveClaimed(saga);
        })(),
      ),
    );
  }

  /**
   * The lease columns for a saga this executor is about to insert (PlaceOrder), so that it is
   * this executor's from the start and no other replica's poller races it; undefined while
   * stopping, when the saga is left for anyone to pick up.
   */
  claimNew(): { leaseOwner: string; leaseUntil: SQL; attempts: number } | undefined {
    if (this.stopping) return undefined;
    return { leaseOwner: this.ownerPrefix + crypto.randomUUID(), leaseUntil: msFromNow(this.options.leaseMs), attempts: 1 };
  }

  /**
   * Works on a saga just inserted with {@link claimNew}'s lease, from the saga and order as
   * inserted (nothing is read back: the insert committed them under this lease). Resolves like
   * {@link runNow}, with the order as finalized if this run finalized it.
   */
  runClaimed(saga: HeldSaga, order: HeldOrder, leaseOwner: string): Promise<OrderRow | undefined> {
    return outsideCall(() => this.track(this.drive(saga, order, leaseOwner, saga.attempts > 1)));
  }

  /** Claims the due sagas (as many as there is room for) and starts working on them; returns how many. */
  async poll(): Promise<number> {
    if (this.polling || this.stopping) return 0;
    const room = this.maxConcurrent - this.inFlight.size;
    if (room <= 0) return 0;
    this.polling = true;
    try {
      const claimed = await this.claim(room);
      for (const saga of claimed) void this.track(this.resume(saga));
      return claimed.length;
    } catch (err) {
      log.warn("could not look for due sagas; trying again at the next poll", { err: describeError(err) });
      return 0;
    } finally {
      this.polling = false;
    }
  }

  /**
   * Waits until the order is final or `timeoutMs` passed, whichever is first, and never past
   * the time the caller gave the call (less a moment to read and send the order), so a caller
   * with a short deadline is answered with the pending order rather than left to time out.
   * Woken at once when this process finalizes it, and looks at the database now and then in
   * case another replica does.
   *
   * `driving` is this executor's own run of the saga ({@link runClaimed}): the order it
   * finalizes is answered as it comes back, without reading it. Only if that run ends without
   * a final order (a retry later, a lost lease) or the time is up is the database looked at.
   * Resolves with the final order when it came from `driving`; otherwise the caller reads it.
   */
  async waitForFinal(orderId: string, timeoutMs: number, driving?: Promise<OrderRow | undefined>): Promise<OrderRow | undefined> {
    const budget = currentCallBudget();
    const deadline = Math.min(Date.now() + timeoutMs, budget ? budget.deadline.getTime() - answerMarginMs : Infinity);
    if (driving) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeUp = new Promise<undefined>((resolve) => {
        timer = setTimeout(() => resolve(undefined), Math.max(0, deadline - Date.now()));
      });
      const final = await Promise.race([driving, timeUp]).finally(() => clearTimeout(timer));
      if (final) return final;
    }
    for (;;) {
      const [row] = await this.database.db.select({ status: orders.status }).from(orders).where(eq(orders.id, orderId));
      const left = deadline - Date.now();
      if (row?.status !== "PENDING" || left <= 0) return undefined;
      await new Promise<void>((resolve) => {
        const set = this.waiters.get(orderId) ?? new Set();
        this.waiters.set(orderId, set);
        const done = () => {
          clearTimeout(timer);
          set.delete(done);
          if (set.size === 0) this.waiters.delete(orderId);
          resolve();
        };
        const timer = setTimeout(done, Math.min(left, 250));
        set.add(done);
      });
    }
  }

  private track<T>(work: Promise<T>): Promise<T | undefined> {
    const tracked = work.catch((err: unknown) => {
      // The saga keeps its lease until it runs out; then it is taken over and the step replayed.
      log.error("saga step failed unexpectedly; it resumes when its lease ends", { err: describeError(err) });
      return undefined;
    });
    this.inFlight.add(tracked);
    void tracked.finally(() => this.inFlight.delete(tracked));
    return tracked;
  }

  /** Claims up to `limit` due, unleased sagas (or the one of `orderId`) with a new lease each. */
  private async claim(limit: number, orderId?: string): Promise<SagaRow[]> {
    const due = and(
      ne(sagas.step, "done"),
      lte(sagas.nextAttemptAt, sql`now()`),
      or(isNull(sagas.leaseUntil), lte(sagas.leaseUntil, sql`now()`)),
      orderId ? eq(sagas.orderId, orderId) : undefined,
    );
    const picked = this.database.db
      .select({ id: sagas.orderId })
      .from(sagas)
      .where(due)
      .orderBy(asc(sagas.nextAttemptAt))
      .limit(limit)
      .for("update", { skipLocked: true });
    return this.database.db
      .update(sagas)
      .set({
        // Each claim has a token of its own: the fence for recording this claim's outcomes.
        leaseOwner: sql`${this.ownerPrefix} || gen_random_uuid()::text`,
        leaseUntil: msFromNow(this.options.leaseMs),
        attempts: sql`${sagas.attempts} + 1`,
        updatedAt: sql`now()`,
      })
      .where(and(inArray(sagas.orderId, picked), due))
      .returning();
  }

  /**
   * Lets go of the sagas an earlier run of this instance held when it died, so they resume
   * now rather than when their leases run out. Call it only once this process has proved it
   * is the one live holder of its instance id (after binding its port). Their attempt counts
   * stay, so a step that may have reached its peer is replayed, not skipped. Returns how many.
   */
  async reclaimFromPreviousRun(): Promise<number> {
    const instance = this.options.instanceId;
    if (!instance) return 0;
    const previous = `${instance}/`;
    const released = await this.database.db
      .update(sagas)
      .set({ leaseUntil: null, leaseOwner: null, updatedAt: sql`now()` })
      .where(
        and(
          ne(sagas.step, "done"),
          // Prefix comparisons, not LIKE: an instance id may hold LIKE's wildcards.
          sql`left(${sagas.leaseOwner}, ${previous.length}) = ${previous}`,
          sql`left(${sagas.leaseOwner}, ${this.ownerPrefix.length}) <> ${this.ownerPrefix}`,
        ),
      )
      .returning({ orderId: sagas.orderId });
    if (released.length) log.info("took back the sagas of this instance's previous run", { sagas: released.length });
    if (released.length) void this.poll();
    return released.length;
  }

  /**
   * Works on a saga the poll found due (a retry, a saga of a crashed executor) in the trace of
   * the PlaceOrder that started it: a span of its own, a child of the context stored with the
   * saga, so the steps it takes now are in the order's trace.
   */
  private resume(claimed: SagaRow): Promise<OrderRow | undefined> {
    const parent = extractContext(claimed.traceContext ?? {});
    const attributes = { "bazaar.order.id": claimed.orderId, "bazaar.saga.step": claimed.step, "bazaar.saga.attempt": claimed.attempts };
    return withSpan("order saga resume", { parent, attributes }, () => this.driveClaimed(claimed));
  }

  /** Works on a saga claimed from the database: reads its order once, then drives it. */
  private async driveClaimed(claimed: SagaRow): Promise<OrderRow | undefined> {
    const token = claimed.leaseOwner;
    if (!token) throw new Error(`saga ${claimed.orderId} was claimed without a lease owner`);
    const [order] = await this.database.db
      .select({ id: orders.id, userId: orders.userId, currency: orders.currency, totalMinor: orders.totalMinor, paymentId: orders.paymentId })
      .from(orders)
      .where(eq(orders.id, claimed.orderId));
    if (!order) throw new Error(`saga ${claimed.orderId} has no order`);
    return this.drive(claimed, order, token, claimed.attempts > 1);
  }

  /**
   * Runs a saga step after step while it holds the lease and there is a next step to take now,
   * keeping the saga and order in memory (see {@link HeldSaga}); returns the order if this run
   * finalized it.
   */
  private async drive(saga: HeldSaga, order: HeldOrder, token: string, attemptedBefore: boolean): Promise<OrderRow | undefined> {
    for (;;) {
      const started = performance.now();
      const result = await this.attempt(saga, order, attemptedBefore);
      sagaStepDuration.observe({ step: saga.step, outcome: result.kind }, (performance.now() - started) / 1000);
      const next = await this.record(saga, order, token, result);
      if (!next || result.kind === "retry") return undefined;
      if (next.final) return next.final;
      if (this.stopping) {
        await this.letGo(saga.orderId, token);
        return undefined;
      }
      ({ saga, order } = next);
      attemptedBefore = false;
    }
  }

  /** Makes one attempt at the saga's current step; failures come back as results, never thrown. */
  private async attempt(saga: HeldSaga, order: HeldOrder, attemptedBefore: boolean): Promise<StepResult> {
    // A cancellation skips the next forward step if no one has tried it yet. A charge or commit
    // that may have reached its peer is replayed first, so that its effect is known and can be
    // undone; a reserve that may have is simply released (releasing nothing is fine).
    if (saga.cancelRequested && forwardSteps.includes(saga.step) && (!attemptedBefore || saga.step === "reserve")) {
      return { kind: "cancel", attemptedBefore };
    }
    const orderId = saga.orderId;
    const retry = (err: unknown): StepResult => ({ kind: "retry", error: describeError(err) });
    switch (saga.step) {
      case "reserve": {
        const items =
          order.items ??
          (await this.database.db
            .select({ productId: orderItems.productId, quantity: orderItems.quantity, name: orderItems.name })
            .from(orderItems)
            .where(eq(orderItems.orderId, orderId))
            .orderBy(asc(orderItems.lineNo)));
        try {
          const outcome = await this.ports.reserve(
            orderId,
            items.map((i) => ({ productId: i.productId, quantity: i.quantity })),
          );
          if (outcome.kind === "reserved") return { kind: "reserved" };
          const short = items.filter((i) => outcome.productIds.includes(i.productId)).map((i) => i.name);
          return { kind: "out_of_stock", names: short.length ? short : items.length === 1 ? [items[0]!.name] : [] };
        } catch (err) {
          return isTransient(err) ? retry(err) : { kind: "reserve_failed", error: describeError(err) };
        }
      }
      case "charge": {
        // Without a token (a saga from before tokens, see migration 0001) a charge can only be
        // replayed, to learn what an earlier attempt did; there is nothing to make a new one with.
        const paymentMethodToken = saga.paymentMethodToken ?? undefined;
        if (!paymentMethodToken && !attemptedBefore) return { kind: "charge_failed", error: "the saga holds no payment method token" };
        try {
          const outcome = await this.ports.charge({
            idempotencyKey: chargeKey(orderId),
            orderId,
            userId: order.userId,
            amountMinor: order.totalMinor,
            currency: order.currency,
            paymentMethodToken,
          });
          if (outcome.kind === "captured") return { kind: "captured", paymentId: outcome.paymentId };
          if (outcome.kind === "declined") return { kind: "declined", reason: outcome.reason };
          return { kind: "payment_method_unusable", error: outcome.message };
        } catch (err) {
          // Refused outright (an invalid request): no money was taken.
          return isTransient(err) ? retry(err) : { kind: "charge_failed", error: describeError(err) };
        }
      }
      case "commit": {
        try {
          const outcome = await this.ports.commit(orderId);
          return outcome.kind === "committed" ? { kind: "committed" } : { kind: "commit_refused", error: outcome.message };
        } catch (err) {
          return isTransient(err) ? retry(err) : { kind: "commit_refused", error: describeError(err) };
        }
      }
      case "refund": {
        if (!order.paymentId) return { kind: "refunded" };
        try {
          await this.ports.refund({ idempotencyKey: refundKey(orderId), paymentId: order.paymentId, reason: saga.cancelReason ?? "order cancelled" });
          return { kind: "refunded" };
        } catch (err) {
          // Compensation is never skipped: a refusal is retried (and shouted about) like an outage.
          if (!isTransient(err)) log.error("payments refused a refund; retrying", { orderId, err: describeError(err) });
          return retry(err);
        }
      }
      case "release": {
        try {
          await this.ports.release(orderId);
          return { kind: "released" };
        } catch (err) {
          if (!isTransient(err)) log.error("inventory refused to release a reservation; retrying", { orderId, err: describeError(err) });
          return retry(err);
        }
      }
      case "done":
        throw new Error(`saga ${orderId} is done; there is no step to attempt`);
    }
  }

  /**
   * Records a step's result and moves the saga on: the saga's next step, any payment on the
   * order, and, once final, the order's state and its event, all in one transaction. Returns
   * the saga and order as they now are (with the final order if it was finalized), or
   * undefined if this claim lost its lease (another executor took over and will replay the step).
   *
   * Every write is fenced: it changes the saga only where the lease is still this claim's and
   * `cancel_requested` is what the held copy says (CancelOrder raises it under the saga row's
   * lock, so a write racing it waits and then matches nothing). A refused write reads the
   * saga once to learn which it was: a lost lease ends this run; a cancellation is taken into
   * the held copy and the transition decided again.
   */
  private async record(
    saga: HeldSaga,
    order: HeldOrder,
    token: string,
    result: StepResult,
  ): Promise<{ saga: HeldSaga; order: HeldOrder; final?: OrderRow } | undefined> {
    const orderId = saga.orderId;
    if (result.kind === "retry") {
      const delay = this.backoff(saga.attempts);
      const [kept] = await this.database.db
        .update(sagas)
        .set({ nextAttemptAt: msFromNow(delay), leaseUntil: null, leaseOwner: null, lastError: result.error, updatedAt: sql`now()` })
        .where(and(eq(sagas.orderId, orderId), eq(sagas.leaseOwner, token)))
        .returning({ orderId: sagas.orderId });
      if (!kept) return this.lostLease(orderId, result);
      sagaRetries.inc({ step: saga.step });
      log.warn("saga step failed; retrying later", { orderId, step: saga.step, attempts: saga.attempts, retryInMs: delay, err: result.error });
      return { saga, order };
    }
    for (;;) {
      const next = transition(saga, order, result);
      const moved: HeldSaga = {
        ...saga,
        step: next.step,
        attempts: next.step === "done" ? 0 : 1,
        cancelReason: saga.cancelReason ?? next.cancel?.reason ?? null,
        cancelCode: saga.cancelCode ?? next.cancel?.code ?? null,
        // The token is needed only until the charge is recorded (as the card was before it).
        paymentMethodToken: next.step === "charge" ? saga.paymentMethodToken : null,
      };
      const paid: HeldOrder = next.paymentId ? { ...order, paymentId: next.paymentId } : order;
      const written = await this.writeStep(saga, moved, token, next);
      if (written) {
        if (written.final) this.finalized(written.final, moved.cancelCode);
        return { saga: moved, order: paid, final: written.final };
      }
      const [now] = await this.database.db
        .select({ leaseOwner: sagas.leaseOwner, cancelRequested: sagas.cancelRequested })
        .from(sagas)
        .where(eq(sagas.orderId, orderId));
      if (now?.leaseOwner !== token) return this.lostLease(orderId, result);
      // Only the saga writes the order's status, under its lease: anything else is a bug to stop at.
      if (now.cancelRequested === saga.cancelRequested) throw new Error(`order ${orderId} is no longer PENDING; refusing to finalize it again`);
      saga = { ...saga, cancelRequested: now.cancelRequested };
    }
  }

  /**
   * Writes a step's transition, fenced (see {@link record}): one statement for a step that
   * goes on, one transaction (one statement and the event) for one that ends the saga.
   * Returns undefined when the fence refused it, having written nothing.
   */
  private async writeStep(held: HeldSaga, moved: HeldSaga, token: string, next: Transition): Promise<{ final?: OrderRow } | undefined> {
    const done = next.step === "done";
    const moveSaga = (db: OrdersDatabase["db"]) =>
      db
        .update(sagas)
        .set({
          step: moved.step,
          // Claimed in this same statement: the next step is this claim's to attempt now.
          attempts: moved.attempts,
          leaseUntil: done ? null : msFromNow(this.options.leaseMs),
          leaseOwner: done ? null : token,
          nextAttemptAt: sql`now()`,
          lastError: null,
          cancelReason: moved.cancelReason,
          cancelCode: moved.cancelCode,
          ...(next.step !== "charge" ? { paymentMethodToken: null } : {}),
          updatedAt: sql`now()`,
        })
        .where(and(eq(sagas.orderId, held.orderId), eq(sagas.leaseOwner, token), eq(sagas.cancelRequested, held.cancelRequested)))
        .returning({ orderId: sagas.orderId });
    // The saga's update as a CTE of the order's, so that both are one statement.
    const fenced = (db: OrdersDatabase["db"]) => db.$with("moved").as(moveSaga(db));
    const db = this.database.db;
    if (!done) {
      if (!next.paymentId) {
        const [row] = await moveSaga(db);
        return row ? {} : undefined;
      }
      const moving = fenced(db);
      const [row] = await db
        .with(moving)
        .update(orders)
        .set({ paymentId: next.paymentId, updatedAt: sql`now()` })
        .where(inArray(orders.id, db.select({ id: moving.orderId }).from(moving)))
        .returning({ id: orders.id });
      return row ? {} : undefined;
    }
    const status = next.confirmed ? "CONFIRMED" : "CANCELLED";
    const reason = status === "CANCELLED" ? (moved.cancelReason ?? "The order was cancelled.") : "";
    try {
      return await db.transaction(async (tx) => {
        const moving = fenced(tx);
        const [final] = await tx
          .with(moving)
          .update(orders)
          .set({ status, cancelReason: reason, updatedAt: sql`now()` })
          .where(and(inArray(orders.id, tx.select({ id: moving.orderId }).from(moving)), eq(orders.status, "PENDING")))
          .returning();
        // The fence refused, or the order is not PENDING: undo the saga's half (record tells which).
        if (!final) throw new TransactionRollbackError();
        if (status === "CONFIRMED") {
          await enqueueEvent(tx, events.orderConfirmed, {
            orderId: final.id,
            userId: final.userId,
            total: { currencyCode: final.currency, amountMinor: BigInt(final.totalMinor) },
            paymentId: final.paymentId ?? "",
            occurTime: timestampNow(),
          });
        } else {
          await enqueueEvent(tx, events.orderCancelled, { orderId: final.id, userId: final.userId, reason, occurTime: timestampNow() });
        }
        return { final };
      });
    } catch (err) {
      if (err instanceof TransactionRollbackError) return undefined;
      throw err;
    }
  }

  /** What follows an order's finalization in this process: metrics, the relay, and whoever waits. */
  private finalized(final: OrderRow, cancelCode: string | null): void {
    const label = final.status === "CONFIRMED" ? "confirmed" : "cancelled";
    sagaOutcomes.inc({ outcome: label, reason: label === "confirmed" ? "none" : (cancelCode ?? "none") });
    sagaDuration.observe({ outcome: label }, Math.max(0, Date.now() - final.createdAt.getTime()) / 1000);
    // Debug, not info: one line per order is a cost on the hot path (the metric counts them).
    log.debug(`order ${label}`, { orderId: final.id, reason: cancelCode ?? "none" });
    this.outbox.wake();
    for (const wake of [...(this.waiters.get(final.id) ?? [])]) wake();
  }

  private lostLease(orderId: string, result: StepResult): undefined {
    log.warn("a saga's lease passed to another executor before its step was recorded; that executor replays the step", { orderId, result: result.kind });
    return undefined;
  }

  /** Gives up a claimed saga between steps (on shutdown), for anyone to continue at once. */
  private async letGo(orderId: string, token: string): Promise<void> {
    await this.database.db
      .update(sagas)
      // The step was claimed but not attempted: take the claim back so no one thinks it may have run.
      .set({ leaseUntil: null, leaseOwner: null, attempts: sql`greatest(${sagas.attempts} - 1, 0)`, updatedAt: sql`now()` })
      .where(and(eq(sagas.orderId, orderId), eq(sagas.leaseOwner, token)));
  }

  /** Capped exponential backoff with jitter, after the `attempts`-th failure of a step. */
  private backoff(attempts: number): number {
    const ceiling = Math.min(this.options.retryMaxMs, this.options.retryBaseMs * 2 ** Math.min(Math.max(attempts - 1, 0), 30));
    return ceiling / 2 + (Math.random() * ceiling) / 2;
  }
}
