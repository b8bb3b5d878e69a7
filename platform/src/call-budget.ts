import { AsyncLocalStorage } from "node:async_hooks";

/**
 * The budget of the gRPC call being served: its deadline and the signal that aborts when the
 * deadline passes or the caller gives up. The server puts it in scope around the handler
 * (AsyncLocalStorage), so what the handler does on the call's behalf inherits it without
 * passing it along: a downstream call gets the time that is left (never a fresh timeout), and
 * a database query is cancelled when the caller is gone — no server keeps working for a
 * caller that stopped waiting.
 */
export interface CallBudget {
  readonly deadline: Date;
  readonly signal: AbortSignal;
  /** False once the call has been answered: work it left running is on its own. */
  inFlight: boolean;
}

const storage = new AsyncLocalStorage<CallBudget>();

/**
 * Work done for a call was abandoned because the call ended first: its deadline passed or its
 * caller cancelled it (a Redis command still waiting when the budget ran out). Not a fault of
 * the server it was waiting on: the gRPC error interceptor answers DEADLINE_EXCEEDED (or
 * CANCELLED), as it does for a database query cancelled with the call.
 */
export class CallEndedError extends Error {
  override name = "CallEndedError";
  /** True if the deadline had passed; false if the caller cancelled before it. */
  readonly deadlineExceeded: boolean;
  constructor(budget: CallBudget, what: string) {
    const deadlineExceeded = Date.now() >= budget.deadline.getTime();
    super(
      deadlineExceeded
        ? `${what} abandoned: the call's deadline (${budget.deadline.toISOString()}) passed first`
        : `${what} abandoned: the caller cancelled the call`,
    );
    this.deadlineExceeded = deadlineExceeded;
  }
}

/** Runs `fn` with `budget` in scope. */
export function withCallBudget<T>(budget: CallBudget, fn: () => T): T {
  return storage.run(budget, fn);
}

/** The budget of the call in scope, while that call is still being served. */
export function currentCallBudget(): CallBudget | undefined {
  const budget = storage.getStore();
  return budget?.inFlight ? budget : undefined;
}

/**
 * Runs `fn` outside any call's budget: for work a handler starts that must outlive the call
 * and not be cancelled with it (the orders saga a PlaceOrder kicks off).
 */
export function outsideCall<T>(fn: () => T): T {
  return storage.exit(fn);
}
