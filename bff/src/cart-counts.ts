import type { RedisConnection } from "@bazaar/platform/cache";
import { log } from "@bazaar/platform/log";
import { cacheRequests } from "@bazaar/platform/metrics";
import { SpanKind, withSpan } from "@bazaar/platform/telemetry";
import type { Cart } from "@bazaar/proto/bazaar/cart/v1/cart_pb";

/** Options of {@link CartCounts}. */
export interface CartCountsOptions {
  /** How long a kept count lives: the bound on staleness for changes the BFF does not see (a cart changed over gRPC). */
  ttlMs?: number;
  /** After an order is confirmed, how long no count is kept while the cart service empties the cart. */
  holdAfterOrderMs?: number;
}

// Keeps "<revision>:<count>" unless the key holds the hold marker "-" or a count of a revision at
// least as new: of two answers of the cart service, whichever order they come in, the newer stays.
const keepIfNewer = `
local held = redis.call("GET", KEYS[1])
if held == "-" then return 0 end
if held then
  local revision = tonumber(string.match(held, "^(%d+):"))
  if revision and revision >= tonumber(ARGV[1]) then return 0 end
end
redis.call("SET", KEYS[1], ARGV[1] .. ":" .. ARGV[2], "PX", ARGV[3])
return 1`;

/**
 * The number of items in each user's cart, kept for the product page so that a signed-in page
 * does not ask the cart service every time. Why here and not read from the cart's own Redis
 * hash: the cart service owns its data (STYLE.md), and its layout is its business; this is the
 * BFF's own copy, under the BFF's prefix, of what the cart service answered.
 *
 * It is in Redis, not in the process, because a shopper's requests reach any BFF replica: a
 * change made through one must show on the page of another. Every answer of the cart service
 * that passes through the BFF (the cart page, each cart change, a miss here) is offered with
 * the cart's revision, which each change bumps, and only a newer revision replaces a kept
 * count, so a slow GetCart that read before a change cannot put the old count back. An order
 * confirmed empties the cart in the cart service, a little later and with a revision the BFF
 * does not learn, so it puts a hold on the user's count instead: nothing is kept until the hold
 * ends. Changes the BFF does not see (a cart changed over gRPC directly) show after `ttlMs`.
 * Redis failing costs only the saving: the count is then asked of the cart service.
 */
export class CartCounts {
  private readonly ttlMs: number;
  private readonly holdMs: number;

  constructor(
    private readonly redis: RedisConnection | undefined,
    options: CartCountsOptions = {},
  ) {
    this.ttlMs = options.ttlMs ?? 60_000;
    this.holdMs = options.holdAfterOrderMs ?? 5_000;
  }

  /** The user's cart's item count: kept, or from `load` (the cart service), then kept. */
  async count(userId: string, load: () => Promise<Cart | undefined>): Promise<number> {
    const held = await this.command("GET", (r) => r.client.get(this.key(userId)));
    const kept = typeof held === "string" ? /^\d+:(\d+)$/.exec(held) : null;
    if (kept) {
      cacheRequests.inc({ cache: "bff.cart-counts", result: "hit" });
      return Number(kept[1]);
    }
    cacheRequests.inc({ cache: "bff.cart-counts", result: held === "-" ? "bypassed" : "miss" });
    const cart = await load();
    if (held !== "-") void this.offer(userId, cart);
    return cart?.itemCount ?? 0;
  }

  /** An answer of the cart service (after a change, or the cart page): kept if newer than the count held. */
  async offer(userId: string, cart: Cart | undefined): Promise<void> {
    if (!cart) return;
    await this.command("EVAL", (r) =>
      r.client.eval(keepIfNewer, { keys: [this.key(userId)], arguments: [String(cart.revision), String(cart.itemCount), String(this.ttlMs)] }),
    );
  }

  /** The user's order was confirmed: the cart service empties the cart; keep no count meanwhile. */
  async orderConfirmed(userId: string): Promise<void> {
    await this.command("SET", (r) => r.client.set(this.key(userId), "-", { expiration: { type: "PX", value: this.holdMs } }));
  }

  private key(userId: string): string {
    return `${this.redis?.keyPrefix ?? ""}bff:cart-count:${userId}`;
  }

  /** Runs a command, traced; undefined when there is no Redis or it failed (logged): the caller goes without. */
  private async command<T>(name: string, fn: (redis: RedisConnection) => Promise<T>): Promise<T | undefined> {
    const redis = this.redis;
    if (!redis) return undefined;
    try {
      return await withSpan(`${name} cart-count`, { kind: SpanKind.CLIENT, attributes: { "db.system.name": "redis", "db.operation.name": name } }, () =>
        fn(redis),
      );
    } catch (err) {
      log.warn("cart count cache unavailable; asking the cart service", { command: name, err: (err as Error).message });
      return undefined;
    }
  }
}
