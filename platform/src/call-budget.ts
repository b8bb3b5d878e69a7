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
