import type { RedisConnection } from "@bazaar/platform/cache";
import { FailedPreconditionError, NotFoundError } from "@bazaar/platform/errors";
import { SpanKind, withSpan } from "@bazaar/platform/telemetry";

/** One line of a stored cart. */
export interface StoredLine {
  productId: string;
  /** Units, 1 to {@link cartLimits.unitsPerLine}. */
  quantity: number;
  /** When the line was first added, in microseconds since the epoch (Redis's clock): orders the lines. */
  addedAtMicros: number;
}

/** A stored cart: its lines and its revision. */
export interface StoredCart {
  /** Oldest first. */
  lines: StoredLine[];
  /** Changes made to the cart while it was kept; 0 for a cart Redis does not hold (see the storage note). */
  revision: number;
}

/** The limits every cart keeps. */
export const cartLimits = {
  /** Units of one product a line may hold. */
  unitsPerLine: 99,
  /** Different products a cart may hold. */
  lines: 50,
} as const;

/** How long an inbox marker outlives its message: far longer than any redelivery takes. */
const inboxMarkerSeconds = 7 * 86_400;

/*
 * Storage: one Redis hash per user, `<prefix>cart:<userId>`; field = product id, value =
 * `{"q":<units>,"t":<added at, µs since the epoch>}`. Keeping the added-at time in the value
 * (rather than in a second sorted set) keeps a cart in ONE key, so expiry, ClearCart and the
 * order-confirmed delete are each one command on one key and there is no second key that could
 * get out of step. With at most 50 lines, sorting by `t` on read costs nothing.
 *
 * The hash's field `:rev` (no product id looks like it) counts the changes, bumped by every
 * one, and emptying the cart (ClearCart, an order confirmed, the last line removed) keeps it:
 * the key then holds only `:rev`, until its TTL runs out. So a client that remembers a higher
 * revision than it is given knows the cart was lost (Redis lost its data, or it expired), while
 * an empty cart with its revision moved on was emptied on purpose, on whatever device. The
 * storefront tells the shopper of a lost cart and offers the lines it remembers back
 * (bff/web/src/cart-copy.ts). The trade-off: the cart's one durable copy is the shopper's own
 * browser, not a database; a lost cart is shown and restorable where the shopper shopped, and
 * a revision is a number only, so a cart lost and then filled past its old revision elsewhere
 * is not reported. A Postgres copy would cover that, at the price of a database for the cart.
 *
 * Read-modify-writes run as Lua scripts: Redis runs a script to the end before any other
 * command, so two AddItem calls for the same line both see and add to each other's units, and
 * the 99-unit and 50-line caps are checked against the value actually being replaced (WATCH/
 * MULTI would do it too, but needs retry loops that fail more the hotter the cart gets). The
 * scripts parse the value with a pattern and write it with string concatenation, never through
 * Lua numbers, so the 16-digit timestamp is copied exactly. The time comes from Redis (TIME),
 * one clock for every replica of the service. Each script ends by returning the whole cart,
 * so a change and the cart it produced come back in one round trip.
 */

/** The hash field that holds the cart's revision. */
const revisionField = ":rev";

/** Lua: returns the cart (every field and value, the revision's too) after a reply status and a number. */
const returnCart = `
local out = {status, number}
for _, v in ipairs(redis.call('HGETALL', KEYS[1])) do out[#out + 1] = v end
return out`;

/** Lua: parses the stored line value `current` into the script's locals q (number) and t (string), or fails. */
const parseLine = `
q, t = string.match(current, '^{"q":(%d+),"t":(%d+)}$')
if not q then return redis.error_reply('cart line ' .. ARGV[1] .. ' holds an unreadable value') end
q = tonumber(q)`;

/**
 * AddItem. KEYS[1] cart; ARGV: product id, units to add, units per line, max lines, TTL seconds.
 * Replies {"ok", 0, cart...}, {"units", units already in the line} or {"lines", lines held}.
 */
const addScript = `
local current = redis.call('HGET', KEYS[1], ARGV[1])
local add, maxUnits, maxLines = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local status, number = 'ok', 0
local q, t
if current then
  ${parseLine}
  if q + add > maxUnits then return {'units', q} end
else
  local lines = redis.call('HLEN', KEYS[1]) - redis.call('HEXISTS', KEYS[1], '${revisionField}')
  if lines >= maxLines then return {'lines', lines} end
  local now = redis.call('TIME')
  q, t = 0, now[1] .. string.format('%06d', tonumber(now[2]))
end
redis.call('HSET', KEYS[1], ARGV[1], '{"q":' .. (q + add) .. ',"t":' .. t .. '}')
redis.call('HINCRBY', KEYS[1], '${revisionField}', 1)
redis.call('EXPIRE', KEYS[1], ARGV[5])
${returnCart}`;

/**
 * UpdateItem. KEYS[1] cart; ARGV: product id, new units (0 removes), TTL seconds.
 * Replies {"ok", 0, cart...} or {"missing", 0}.
 */
const setQuantityScript = `
local current = redis.call('HGET', KEYS[1], ARGV[1])
local status, number = 'ok', 0
local q, t
if not current then return {'missing', 0} end
if tonumber(ARGV[2]) == 0 then
  redis.call('HDEL', KEYS[1], ARGV[1])
else
  ${parseLine}
  redis.call('HSET', KEYS[1], ARGV[1], '{"q":' .. ARGV[2] .. ',"t":' .. t .. '}')
end
redis.call('HINCRBY', KEYS[1], '${revisionField}', 1)
redis.call('EXPIRE', KEYS[1], ARGV[3])
${returnCart}`;

/**
 * RemoveItem, and dropping lines of products the catalog no longer has. KEYS[1] cart; ARGV:
 * TTL seconds, then the product ids. The revision moves only if a line went. Replies {"ok", 0, cart...}.
 */
const removeScript = `
local status, number = 'ok', 0
if redis.call('HDEL', KEYS[1], unpack(ARGV, 2)) > 0 then redis.call('HINCRBY', KEYS[1], '${revisionField}', 1) end
redis.call('EXPIRE', KEYS[1], ARGV[1])
${returnCart}`;

/** Lua: empties the cart KEYS[n] but keeps its revision, bumped; ARGV[ttl] the cart's TTL in seconds. */
const emptyCart = (n: number, ttl: number) => `
local rev = redis.call('HINCRBY', KEYS[${n}], '${revisionField}', 1)
redis.call('DEL', KEYS[${n}])
redis.call('HSET', KEYS[${n}], '${revisionField}', rev)
redis.call('EXPIRE', KEYS[${n}], ARGV[${ttl}])`;

/** ClearCart. KEYS[1] cart; ARGV[1] the cart's TTL in seconds. Replies the new revision. */
const clearScript = `${emptyCart(1, 1)}
return rev`;

/**
 * The inbox of the order-confirmed consumer, in Redis because the cart has no Postgres.
 * KEYS[1] the message's marker, KEYS[2] the cart; ARGV[1] the marker's TTL, ARGV[2] the cart's, in seconds.
 * Sets the marker only if absent and, in the same script, empties the cart (keeping its
 * revision, bumped): 1 = cleared, 0 = the marker was there (the message was handled before),
 * nothing touched.
 */
const clearOnceScript = `
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
  ${emptyCart(2, 2)}
  return 1
end
return 0`;

/** A Lua script run by its SHA1 (EVALSHA), loaded on first use or after a Redis restart. */
class LuaScript {
  readonly sha: string;
  constructor(
    readonly name: string,
    readonly source: string,
  ) {
    this.sha = new Bun.CryptoHasher("sha1").update(source).digest("hex");
  }

  async run(redis: RedisConnection, keys: string[], args: (string | number)[]): Promise<unknown> {
    const options = { keys, arguments: args.map(String) };
    try {
      return await redis.client.evalSha(this.sha, options);
    } catch (err) {
      if (!(err as Error).message?.startsWith("NOSCRIPT")) throw err;
      return redis.client.eval(this.source, options);
    }
  }
}

const scripts = {
  add: new LuaScript("cart.add", addScript),
  setQuantity: new LuaScript("cart.set-quantity", setQuantityScript),
  remove: new LuaScript("cart.remove", removeScript),
  clear: new LuaScript("cart.clear", clearScript),
  clearOnce: new LuaScript("cart.clear-once", clearOnceScript),
};

/** Decodes an HGETALL reply (field, value, field, value …) into the cart. */
function decodeFlat(flat: readonly unknown[]): StoredCart {
  const hash: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) hash[String(flat[i])] = String(flat[i + 1]);
  return decodeCart(hash);
}

/** Decodes a cart's hash: its lines, oldest first, and its revision. */
function decodeCart(hash: Record<string, string>): StoredCart {
  const { [revisionField]: revision, ...fields } = hash;
  const lines = sortLines(Object.entries(fields).map(([productId, value]) => decodeLine(productId, value)));
  return { lines, revision: Number(revision ?? 0) };
}

function decodeLine(productId: string, value: string): StoredLine {
  const match = /^\{"q":(\d+),"t":(\d+)\}$/.exec(value);
  if (!match) throw new Error(`cart line ${productId} holds an unreadable value`);
  return { productId, quantity: Number(match[1]), addedAtMicros: Number(match[2]) };
}

function sortLines(lines: StoredLine[]): StoredLine[] {
  return lines.sort((a, b) => a.addedAtMicros - b.addedAtMicros || (a.productId < b.productId ? -1 : a.productId > b.productId ? 1 : 0));
}

/** Options of a {@link CartStore}. */
export interface CartStoreOptions {
  /** Seconds a cart lives after its last change. */
  ttlSeconds: number;
}

/**
 * Carts in Redis, one hash per user (see the storage note above). Every change refreshes the
 * cart's expiry; every Redis round trip is a CLIENT span. Callers pass the user id of the
 * verified caller: there is no way to name someone else's cart.
 */
export class CartStore {
  constructor(
    private readonly redis: RedisConnection,
    private readonly options: CartStoreOptions,
  ) {}

  /** The Redis key of a user's cart. */
  key(userId: string): string {
    return `${this.redis.keyPrefix}cart:${userId}`;
  }

  /** The Redis key that marks a message as handled by a consumer. */
  inboxKey(consumer: string, messageId: string): string {
    return `${this.redis.keyPrefix}inbox:${consumer}:${messageId}`;
  }

  private span<T>(command: string, operation: string, fn: () => Promise<T>): Promise<T> {
    return withSpan(
      `${command} ${operation}`,
      { kind: SpanKind.CLIENT, attributes: { "db.system.name": "redis", "db.operation.name": command, "db.collection.name": "cart" } },
      fn,
    );
  }

  /** The user's cart (no lines and revision 0 if Redis holds none). */
  async cart(userId: string): Promise<StoredCart> {
    return decodeCart(await this.span("HGETALL", "cart", () => this.redis.client.hGetAll(this.key(userId))));
  }

  /**
   * Adds units of a product, to its line if there is one (keeping the line's place). Fails,
   * changing nothing, when the line would exceed 99 units or a new line would be the 51st.
   */
  async add(userId: string, productId: string, quantity: number): Promise<StoredCart> {
    const reply = (await this.span("EVALSHA", scripts.add.name, () =>
      scripts.add.run(this.redis, [this.key(userId)], [productId, quantity, cartLimits.unitsPerLine, cartLimits.lines, this.options.ttlSeconds]),
    )) as unknown[];
    const [status, number] = [String(reply[0]), Number(reply[1])];
    if (status === "units") {
      const room = cartLimits.unitsPerLine - number;
      throw new FailedPreconditionError(
        `the cart holds ${number} of product ${productId} already; adding ${quantity} would make ${number + quantity}, ` +
          `more than the ${cartLimits.unitsPerLine} a line may hold (${room > 0 ? `add at most ${room}` : "the line is full"})`,
      );
    }
    if (status === "lines") {
      throw new FailedPreconditionError(
        `the cart holds ${number} different products already, the most it may hold; remove one before adding product ${productId}`,
      );
    }
    return decodeFlat(reply.slice(2));
  }

  /** Sets a line's units (0 removes the line), keeping its place; NOT_FOUND if the cart has no such line. */
  async setQuantity(userId: string, productId: string, quantity: number): Promise<StoredCart> {
    const reply = (await this.span("EVALSHA", scripts.setQuantity.name, () =>
      scripts.setQuantity.run(this.redis, [this.key(userId)], [productId, quantity, this.options.ttlSeconds]),
    )) as unknown[];
    if (reply[0] === "missing") throw new NotFoundError(`the cart has no line for product ${productId}; add it first`);
    return decodeFlat(reply.slice(2));
  }

  /** Removes lines (those not there are ignored) and returns what is left. */
  async remove(userId: string, productIds: readonly string[]): Promise<StoredCart> {
    const reply = (await this.span("EVALSHA", scripts.remove.name, () =>
      scripts.remove.run(this.redis, [this.key(userId)], [this.options.ttlSeconds, ...productIds]),
    )) as unknown[];
    return decodeFlat(reply.slice(2));
  }

  /** Empties the user's cart, keeping its revision (bumped); returns the new revision. */
  async clear(userId: string): Promise<number> {
    return Number(await this.span("EVALSHA", scripts.clear.name, () => scripts.clear.run(this.redis, [this.key(userId)], [this.options.ttlSeconds])));
  }

  /**
   * Empties the user's cart for one message of a consumer, at most once per message id: the
   * marker and the emptying happen in one script, so either both happened or neither did.
   * "duplicate" when the message was handled before (the cart is left alone).
   */
  async clearOnce(userId: string, consumer: string, messageId: string): Promise<"cleared" | "duplicate"> {
    const done = await this.span("EVALSHA", scripts.clearOnce.name, () =>
      scripts.clearOnce.run(this.redis, [this.inboxKey(consumer, messageId), this.key(userId)], [inboxMarkerSeconds, this.options.ttlSeconds]),
    );
    return Number(done) === 1 ? "cleared" : "duplicate";
  }
}
