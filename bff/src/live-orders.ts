import { status as grpcStatus } from "@grpc/grpc-js";
import type { CallOptions } from "@bazaar/platform/grpc/client";
import { RpcError } from "@bazaar/platform/errors";
import { log } from "@bazaar/platform/log";
import type { Order } from "@bazaar/proto/bazaar/orders/v1/orders_pb";
import { type OrderStatusName, type OrderView, orderView } from "./shape.ts";
import type { OrdersClient } from "./upstreams/orders.ts";

/** An order's status change, as the BFF learns it from orders' events. */
export interface OrderStatusEvent {
  /** The AMQP message id (orders' outbox row id): the same on every replica. */
  messageId: string;
  orderId: string;
  userId: string;
  status: OrderStatusName;
  /** The reason, for CANCELLED. */
  cancelReason: string;
  /** When it happened (the event's occur_time), epoch milliseconds. */
  occurredAt: number;
}

/** One update to send: the SSE id and what happened. */
export interface LiveUpdate {
  /** `<occurredAt>-<messageId>`: orders updates in time, and is the same on every replica. */
  id: string;
  event: OrderStatusEvent;
}

/** An open /api/events stream of one user. */
export interface LiveSubscriber {
  /** Called with each new update for the user, in order. Must not throw. */
  deliver(update: LiveUpdate): void;
}

/** Options of {@link LiveOrders}. */
export interface LiveOrdersOptions {
  /** How long updates are kept for reconnecting streams (Last-Event-ID). */
  replayWindowMs?: number;
  /** At most this many updates kept per user. */
  perUserLimit?: number;
}

/** Where an update stands in a user's sequence: by time, then message id. */
interface Position {
  occurredAt: number;
  messageId: string;
}

function compare(a: Position, b: Position): number {
  return a.occurredAt - b.occurredAt || (a.messageId < b.messageId ? -1 : a.messageId > b.messageId ? 1 : 0);
}

/** Parses a Last-Event-ID this class issued; undefined for anything else. */
function parseId(id: string): Position | undefined {
  const match = /^(\d{1,15})-([\w-]{1,64})$/.exec(id);
  return match ? { occurredAt: Number(match[1]), messageId: match[2]! } : undefined;
}

/**
 * Live order status for /api/events. Every BFF replica consumes every order event (a queue of
 * its own), keeps the last few minutes of them per user in memory, and hands each to the open
 * streams of its user. The buffer is the replay for Last-Event-ID: the ids are derived from the
 * event (time and message id), not from a counter, so every replica holds the same ids and a
 * reconnect that lands on another replica still gets what it missed. Memory stays bounded: a
 * few minutes of events, at most `perUserLimit` per user. (Redis would survive a restart, but
 * a restarted replica's streams are gone too, and their browsers reload state when they
 * reconnect without a known id.)
 *
 * Updates carry only the event; {@link view} turns one into an OrderView with the order's
 * lines and totals (one GetOrder per order, made with the stream's user's own token and
 * cached for the window), overlaid with the status the event reports, so a stream shows
 * PENDING then CONFIRMED even if the order was already confirmed when it was looked up.
 */
export class LiveOrders {
  private readonly buffers = new Map<string, LiveUpdate[]>();
  private readonly subscribers = new Map<string, Set<LiveSubscriber>>();
  private readonly orders = new Map<string, { expiresAt: number; order: Promise<Order> }>();
  private readonly replayWindowMs: number;
  private readonly perUserLimit: number;
  private lastSweep = Date.now();

  constructor(
    private readonly ordersClient: OrdersClient,
    options: LiveOrdersOptions = {},
  ) {
    this.replayWindowMs = options.replayWindowMs ?? 5 * 60_000;
    this.perUserLimit = options.perUserLimit ?? 100;
  }

  /** Records an event (duplicates are ignored) and hands it to the user's open streams. */
  readonly record = (event: OrderStatusEvent): void => {
    const update: LiveUpdate = { id: `${event.occurredAt}-${event.messageId}`, event };
    const buffer = this.buffers.get(event.userId) ?? [];
    if (buffer.some((u) => u.event.messageId === event.messageId)) return;
    // Usually the newest; a late one goes where its time puts it.
    let at = buffer.length;
    while (at > 0 && compare(buffer[at - 1]!.event, event) > 0) at--;
    buffer.splice(at, 0, update);
    this.prune(buffer);
    this.buffers.set(event.userId, buffer);
    this.sweep();
    for (const subscriber of this.subscribers.get(event.userId) ?? []) subscriber.deliver(update);
  };

  /**
   * Registers a stream of a user; returns the updates it missed after `lastEventId` (none
   * without one) and a function that unregisters it. Replay and registration happen at once,
   * so no update falls between them.
   */
  subscribe(userId: string, subscriber: LiveSubscriber, lastEventId?: string): { missed: LiveUpdate[]; unsubscribe: () => void } {
    let set = this.subscribers.get(userId);
    if (!set) {
      set = new Set();
      this.subscribers.set(userId, set);
    }
    set.add(subscriber);
    const last = lastEventId ? parseId(lastEventId) : undefined;
    const buffer = this.buffers.get(userId) ?? [];
    this.prune(buffer);
    const missed = last ? buffer.filter((u) => compare(u.event, last) > 0) : [];
    return {
      missed,
      unsubscribe: () => {
        set.delete(subscriber);
        if (set.size === 0 && this.subscribers.get(userId) === set) this.subscribers.delete(userId);
      },
    };
  }

  /** How many streams are open (all users). */
  get openStreams(): number {
    let n = 0;
    for (const set of this.subscribers.values()) n += set.size;
    return n;
  }

  /** The OrderView an update shows, looked up with the user's own call options. */
  async view(update: LiveUpdate, auth: CallOptions): Promise<OrderView> {
    const { event } = update;
    const order = await this.order(event.orderId, auth);
    return {
      ...orderView(order),
      status: event.status,
      cancelReason: event.status === "CANCELLED" ? event.cancelReason || order.cancelReason || null : null,
      updatedAt: new Date(event.occurredAt).toISOString(),
    };
  }

  /** An order's lines and totals, which never change: one GetOrder per order, shared by all its streams. */
  private order(orderId: string, auth: CallOptions): Promise<Order> {
    const now = Date.now();
    const cached = this.orders.get(orderId);
    if (cached && cached.expiresAt > now) return cached.order;
    const order = this.ordersClient.getOrder({ id: orderId }, auth).then(({ order: o }) => {
      if (!o) throw new RpcError(grpcStatus.INTERNAL, "orders answered GetOrder without an order");
      return o;
    });
    this.orders.set(orderId, { expiresAt: now + this.replayWindowMs, order });
    order.catch((err: unknown) => {
      if (this.orders.get(orderId)?.order === order) this.orders.delete(orderId);
      log.warn("could not look up an order for a live update", { orderId, err: (err as Error).message });
    });
    return order;
  }

  private prune(buffer: LiveUpdate[]): void {
    const oldest = Date.now() - this.replayWindowMs;
    let drop = 0;
    while (drop < buffer.length && buffer[drop]!.event.occurredAt < oldest) drop++;
    drop = Math.max(drop, buffer.length - this.perUserLimit);
    if (drop > 0) buffer.splice(0, drop);
  }

  /** Once a minute, forgets users and orders with nothing left in the window. */
  private sweep(): void {
    const now = Date.now();
    if (now - this.lastSweep < 60_000) return;
    this.lastSweep = now;
    for (const [userId, buffer] of this.buffers) {
      this.prune(buffer);
      if (buffer.length === 0) this.buffers.delete(userId);
    }
    for (const [orderId, entry] of this.orders) if (entry.expiresAt <= now) this.orders.delete(orderId);
  }
}
