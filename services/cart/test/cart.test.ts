import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { create, toBinary } from "@bufbuild/protobuf";
import { status } from "@grpc/grpc-js";
import { connectRedis, type RedisConnection } from "@bazaar/platform/cache";
import type { RpcError } from "@bazaar/platform/errors";
import { createClient, type GrpcClient } from "@bazaar/platform/grpc/client";
import { configureLogging } from "@bazaar/platform/log";
import { Broker } from "@bazaar/platform/messaging/broker";
import { events } from "@bazaar/platform/messaging/events";
import { messagesConsumed } from "@bazaar/platform/metrics";
import { eventually } from "@bazaar/testkit/eventually";
import { bearer, type LaunchedProcess, rpcError, startTestGrpcServer, type TestGrpcServerWithIssuer, testEnv } from "@bazaar/testkit/fixtures";
import type { TestIssuer } from "@bazaar/testkit/test-issuer";
import { TestScope } from "@bazaar/testkit/test-scope";
import { type Cart, CartService } from "@bazaar/proto/bazaar/cart/v1/cart_pb";
import { CatalogService, type Product } from "@bazaar/proto/bazaar/catalog/v1/catalog_pb";
import { OrderConfirmedSchema } from "@bazaar/proto/bazaar/events/v1/events_pb";
import { CartStore } from "../src/cart-store.ts";
import { Carts } from "../src/carts.ts";
import { clearCartOnOrderConfirmed, orderConfirmedQueue } from "../src/order-confirmed.ts";
import { cartAccess, cartHandlers } from "../src/rpc.ts";

// The cart's handlers behind a real gRPC server, on a Redis prefix and RabbitMQ vhost of this
// run's own, pricing from a real catalog process seeded with the 72 demo products.
const scope = new TestScope();
const redisPrefix = scope.redisPrefix();
const ttlSeconds = 30 * 86_400;
let catalogProcess: LaunchedProcess;
let catalog: GrpcClient<typeof CatalogService>;
let products: Product[];
let issuer: TestIssuer;
let redis: RedisConnection;
let store: CartStore;
let grpc: TestGrpcServerWithIssuer<typeof CartService>;
let client: GrpcClient<typeof CartService>;
let broker: Broker;

beforeAll(async () => {
  configureLogging("cart", "error");
  issuer = await scope.issuer();
  // The catalog trusts the test issuer too, so a test can create a product as an admin.
  const [launched, vhost] = await Promise.all([scope.launch("catalog", { JWKS_URL: issuer.jwksUrl }), scope.vhost()]);
  catalogProcess = launched;
  catalog = scope.add(createClient(CatalogService, catalogProcess.grpcAddress, { defaultTimeoutMs: 2_000 }), (c) => c.close());
  products = (await catalog.listProducts({ pageSize: 100 })).products;
  redis = scope.add(await connectRedis(testEnv.REDIS_URL, redisPrefix), (r) => r.close());
  store = new CartStore(redis, { ttlSeconds });
  grpc = scope.add(
    await startTestGrpcServer({ service: CartService, impl: cartHandlers(new Carts(store, catalog, { currency: "USD" })), access: cartAccess, issuer }),
    (g) => g.stop(),
  );
  client = grpc.client;
  broker = scope.add(await Broker.connect(vhost.url, { service: "cart-test" }), (b) => b.close());
  await broker.consume({ queue: orderConfirmedQueue, handlers: [clearCartOnOrderConfirmed(store)] });
}, 60_000);

afterAll(() => scope.cleanup(), 60_000);

/** A signed-in customer of their own. */
async function newUser() {
  const id = crypto.randomUUID();
  return { id, auth: await grpc.auth({ sub: id, roles: ["customer"] }) };
}

/** What Redis holds for a user's cart. */
const stored = (userId: string) => redis.client.hGetAll(store.key(userId));
/** The product ids of the lines Redis holds for a user (without the revision's field). */
const storedLines = async (userId: string) => Object.keys(await stored(userId)).filter((f) => f !== ":rev");
const quantities = (cart: Cart | undefined) => Object.fromEntries((cart?.lines ?? []).map((l) => [l.productId, l.quantity]));
const unknownProduct = "00000000-0000-4000-8000-00000000c0de";

describe("a cart", () => {
  test("a new user's cart is empty, with a zero total", async () => {
    const user = await newUser();
    const { cart } = await client.getCart({}, user.auth);
    expect(cart?.userId).toBe(user.id);
    expect(cart?.lines).toEqual([]);
    expect(cart?.itemCount).toBe(0);
    expect(cart?.total?.amountMinor).toBe(0n);
    expect(cart?.total?.currencyCode).toBe("USD");
  });

  test("add, update, remove and clear; every answer is priced at the catalog's prices", async () => {
    const user = await newUser();
    const [a, b, c] = [products[0]!, products[1]!, products[2]!];
    await client.addItem({ productId: a.id, quantity: 2 }, user.auth);
    await client.addItem({ productId: b.id, quantity: 3 }, user.auth);
    const { cart } = await client.addItem({ productId: c.id, quantity: 1 }, user.auth);
    const { products: prices } = await catalog.batchGetProducts({ ids: [a.id, b.id, c.id] });
    const price = (id: string) => prices.find((p) => p.id === id)!.price!.amountMinor;

    expect(cart?.lines.map((l) => l.productId)).toEqual([a.id, b.id, c.id]);
    const lineB = cart!.lines[1]!;
    expect(lineB).toMatchObject({ name: b.name, imageUrl: b.imageUrl, quantity: 3 });
    expect(lineB.unitPrice).toMatchObject({ currencyCode: "USD", amountMinor: price(b.id) });
    expect(lineB.lineTotal?.amountMinor).toBe(price(b.id) * 3n);
    expect(cart?.total?.amountMinor).toBe(price(a.id) * 2n + price(b.id) * 3n + price(c.id));
    expect(cart?.itemCount).toBe(6);

    const updated = (await client.updateItem({ productId: b.id, quantity: 5 }, user.auth)).cart;
    expect(quantities(updated)).toEqual({ [a.id]: 2, [b.id]: 5, [c.id]: 1 });
    expect(updated?.total?.amountMinor).toBe(price(a.id) * 2n + price(b.id) * 5n + price(c.id));

    const removed = (await client.removeItem({ productId: a.id }, user.auth)).cart;
    expect(removed?.lines.map((l) => l.productId)).toEqual([b.id, c.id]);
    expect(removed?.itemCount).toBe(6);

    const zeroed = (await client.updateItem({ productId: c.id, quantity: 0 }, user.auth)).cart;
    expect(quantities(zeroed)).toEqual({ [b.id]: 5 });

    await client.clearCart({}, user.auth);
    expect((await client.getCart({}, user.auth)).cart?.lines).toEqual([]);
    expect(await storedLines(user.id)).toEqual([]);
    await client.clearCart({}, user.auth); // clearing an empty cart is fine too
  });

  test("adding a product already in the cart adds to its line, which keeps its place", async () => {
    const user = await newUser();
    const [a, b] = [products[3]!, products[4]!];
    await client.addItem({ productId: a.id, quantity: 2 }, user.auth);
    await client.addItem({ productId: b.id, quantity: 1 }, user.auth);
    const { cart } = await client.addItem({ productId: a.id.toUpperCase(), quantity: 3 }, user.auth);
    expect(cart?.lines.map((l) => [l.productId, l.quantity])).toEqual([
      [a.id, 5],
      [b.id, 1],
    ]);
    // Removed and added again, a line goes to the end.
    await client.removeItem({ productId: a.id }, user.auth);
    const again = (await client.addItem({ productId: a.id, quantity: 1 }, user.auth)).cart;
    expect(again?.lines.map((l) => l.productId)).toEqual([b.id, a.id]);
  });

  test("every change keeps the cart for CART_TTL_DAYS from now", async () => {
    const user = await newUser();
    await client.addItem({ productId: products[5]!.id, quantity: 1 }, user.auth);
    await redis.client.expire(store.key(user.id), 60);
    await client.updateItem({ productId: products[5]!.id, quantity: 2 }, user.auth);
    const ttl = await redis.client.ttl(store.key(user.id));
    expect(ttl).toBeGreaterThan(ttlSeconds - 10);
    expect(ttl).toBeLessThanOrEqual(ttlSeconds);
  });
});

describe("the revision", () => {
  test("grows with every change and is kept when the cart is emptied on purpose (the last line removed, ClearCart), for the cart's TTL", async () => {
    const user = await newUser();
    const [a, b] = [products[11]!, products[12]!];
    expect((await client.getCart({}, user.auth)).cart?.revision).toBe(0);
    const revisions = [
      (await client.addItem({ productId: a.id, quantity: 1 }, user.auth)).cart?.revision,
      (await client.addItem({ productId: b.id, quantity: 2 }, user.auth)).cart?.revision,
      (await client.updateItem({ productId: a.id, quantity: 3 }, user.auth)).cart?.revision,
      (await client.removeItem({ productId: b.id }, user.auth)).cart?.revision,
      (await client.updateItem({ productId: a.id, quantity: 0 }, user.auth)).cart?.revision,
    ];
    expect(revisions).toEqual([1, 2, 3, 4, 5]);
    expect((await client.getCart({}, user.auth)).cart).toMatchObject({ lines: [], revision: 5 });
    await client.addItem({ productId: a.id, quantity: 1 }, user.auth);
    await client.clearCart({}, user.auth);
    expect((await client.getCart({}, user.auth)).cart).toMatchObject({ lines: [], itemCount: 0, revision: 7 });
    expect(await redis.client.ttl(store.key(user.id))).toBeGreaterThan(ttlSeconds - 10);
  });

  test("a cart Redis no longer holds reads as revision 0, lower than any its owner was shown", async () => {
    const user = await newUser();
    await client.addItem({ productId: products[13]!.id, quantity: 2 }, user.auth);
    await redis.client.del(store.key(user.id));
    expect((await client.getCart({}, user.auth)).cart).toMatchObject({ lines: [], revision: 0 });
  });

  test("a full cart of 50 lines stays full: the revision's field is not counted as a line", async () => {
    const user = await newUser();
    for (const p of products.slice(0, 50)) await client.addItem({ productId: p.id, quantity: 1 }, user.auth);
    const err = await rpcError(client.addItem({ productId: products[50]!.id, quantity: 1 }, user.auth));
    expect(err.message).toContain("holds 50 different products");
  });
});

describe("limits", () => {
  test("a line holds at most 99 units: going past is FAILED_PRECONDITION and changes nothing", async () => {
    const user = await newUser();
    const p = products[6]!;
    await client.addItem({ productId: p.id, quantity: 95 }, user.auth);
    const before = await stored(user.id);
    const err = await rpcError(client.addItem({ productId: p.id, quantity: 5 }, user.auth));
    expect(err.code).toBe(status.FAILED_PRECONDITION);
    expect(err.message).toContain("add at most 4");
    expect(await stored(user.id)).toEqual(before);
    expect(quantities((await client.addItem({ productId: p.id, quantity: 4 }, user.auth)).cart)).toEqual({ [p.id]: 99 });
  });

  test("a cart holds at most 50 different products, even when the last ones race", async () => {
    const user = await newUser();
    for (const p of products.slice(0, 48)) await client.addItem({ productId: p.id, quantity: 1 }, user.auth);
    const racing = products.slice(48, 52);
    const results = await Promise.allSettled(racing.map((p) => client.addItem({ productId: p.id, quantity: 1 }, user.auth)));
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(2);
    for (const r of results.filter((r) => r.status === "rejected")) {
      expect((r.reason as RpcError).code).toBe(status.FAILED_PRECONDITION);
      expect((r.reason as RpcError).message).toContain("50 different products");
    }
    const { cart } = await client.getCart({}, user.auth);
    expect(cart?.lines).toHaveLength(50);
    expect(cart?.lines.slice(0, 48).map((l) => l.productId)).toEqual(products.slice(0, 48).map((p) => p.id));
    // A product already in the full cart can still get more units.
    expect((await client.addItem({ productId: products[0]!.id, quantity: 1 }, user.auth)).cart?.itemCount).toBe(51);
  });

  test("20 parallel AddItem of one unit make a line of exactly 20", async () => {
    const user = await newUser();
    const p = products[7]!;
    await Promise.all(Array.from({ length: 20 }, () => client.addItem({ productId: p.id, quantity: 1 }, user.auth)));
    expect(quantities((await client.getCart({}, user.auth)).cart)).toEqual({ [p.id]: 20 });
  });

  test("parallel AddItem near the cap: exactly those that fit succeed", async () => {
    const user = await newUser();
    const p = products[8]!;
    await client.addItem({ productId: p.id, quantity: 90 }, user.auth);
    const results = await Promise.allSettled(Array.from({ length: 5 }, () => client.addItem({ productId: p.id, quantity: 3 }, user.auth)));
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(3);
    expect(quantities((await client.getCart({}, user.auth)).cart)).toEqual({ [p.id]: 99 });
  });
});

describe("products", () => {
  test("an unknown product is NOT_FOUND and nothing is stored", async () => {
    const user = await newUser();
    const err = await rpcError(client.addItem({ productId: unknownProduct, quantity: 1 }, user.auth));
    expect(err.code).toBe(status.NOT_FOUND);
    expect(err.message).toContain(`no product has id ${unknownProduct}`);
    expect(await redis.client.exists(store.key(user.id))).toBe(0);
  });

  test("a line whose product the catalog no longer has is dropped from the cart and from Redis", async () => {
    const user = await newUser();
    const p = products[9]!;
    await client.addItem({ productId: p.id, quantity: 2 }, user.auth);
    await redis.client.hSet(store.key(user.id), unknownProduct, `{"q":1,"t":${Date.now() * 1000}}`);
    const { cart } = await client.getCart({}, user.auth);
    expect(quantities(cart)).toEqual({ [p.id]: 2 });
    expect(await storedLines(user.id)).toEqual([p.id]);
  });

  test("a product priced in another currency cannot be added (FAILED_PRECONDITION)", async () => {
    const admin = await issuer.token({ sub: crypto.randomUUID(), roles: ["admin"] });
    const sku = `EUR-${Date.now().toString(36).toUpperCase()}`;
    const { product } = await catalog.createProduct(
      { product: { sku, slug: sku.toLowerCase(), name: "Euro Teapot", categoryId: "kitchen", price: { currencyCode: "EUR", amountMinor: 1500n } } },
      bearer(admin),
    );
    const user = await newUser();
    const err = await rpcError(client.addItem({ productId: product!.id, quantity: 1 }, user.auth));
    expect(err.code).toBe(status.FAILED_PRECONDITION);
    expect(err.message).toContain("EUR");
    expect(await redis.client.exists(store.key(user.id))).toBe(0);
  });
});

describe("bad input", () => {
  test("every malformed field is INVALID_ARGUMENT naming it, and the cart is unchanged", async () => {
    const user = await newUser();
    const p = products[10]!;
    await client.addItem({ productId: p.id, quantity: 2 }, user.auth);
    const before = await stored(user.id);
    const cases: [string, Promise<unknown>][] = [
      ["product_id", client.addItem({ productId: "", quantity: 1 }, user.auth)],
      ["product_id", client.addItem({ productId: "42; DEL everything", quantity: 1 }, user.auth)],
      ["quantity", client.addItem({ productId: p.id, quantity: 0 }, user.auth)],
      ["quantity", client.addItem({ productId: p.id, quantity: -3 }, user.auth)],
      ["quantity", client.addItem({ productId: p.id, quantity: 100 }, user.auth)],
      ["product_id", client.updateItem({ productId: "nope", quantity: 1 }, user.auth)],
      ["quantity", client.updateItem({ productId: p.id, quantity: -1 }, user.auth)],
      ["quantity", client.updateItem({ productId: p.id, quantity: 100 }, user.auth)],
      ["product_id", client.removeItem({ productId: "" }, user.auth)],
      ["product_id", client.removeItem({ productId: `${p.id}x` }, user.auth)],
    ];
    // The calls run at once: each gets its handler now, or one failing before its turn would be an unhandled rejection.
    for (const [field, failure] of cases.map(([field, call]) => [field, rpcError(call)] as const)) {
      const err = await failure;
      expect(err.code).toBe(status.INVALID_ARGUMENT);
      expect(err.message).toStartWith(`${field}: `);
    }
    expect(await stored(user.id)).toEqual(before);
  });

  test("updating a line the cart does not have is NOT_FOUND; removing it succeeds", async () => {
    const user = await newUser();
    await client.addItem({ productId: products[11]!.id, quantity: 1 }, user.auth);
    const before = await stored(user.id);
    const err = await rpcError(client.updateItem({ productId: products[12]!.id, quantity: 3 }, user.auth));
    expect(err.code).toBe(status.NOT_FOUND);
    expect(err.message).toContain(products[12]!.id);
    expect((await client.removeItem({ productId: products[12]!.id }, user.auth)).cart?.itemCount).toBe(1);
    expect(await stored(user.id)).toEqual(before);
  });
});

describe("ownership and access", () => {
  test("each user sees and changes only their own cart", async () => {
    const [alice, bob] = [await newUser(), await newUser()];
    const [x, y] = [products[13]!, products[14]!];
    await client.addItem({ productId: x.id, quantity: 2 }, alice.auth);
    await client.addItem({ productId: y.id, quantity: 1 }, bob.auth);
    expect(quantities((await client.getCart({}, alice.auth)).cart)).toEqual({ [x.id]: 2 });
    expect(quantities((await client.getCart({}, bob.auth)).cart)).toEqual({ [y.id]: 1 });

    // Bob naming Alice's line reaches only his own cart.
    expect((await rpcError(client.updateItem({ productId: x.id, quantity: 9 }, bob.auth))).code).toBe(status.NOT_FOUND);
    await client.removeItem({ productId: x.id }, bob.auth);
    await client.clearCart({}, bob.auth);
    expect(quantities((await client.getCart({}, alice.auth)).cart)).toEqual({ [x.id]: 2 });
    expect((await client.getCart({}, bob.auth)).cart?.lines).toEqual([]);
  });

  test("without a token every RPC is UNAUTHENTICATED; with a service token PERMISSION_DENIED", async () => {
    const service = bearer(await issuer.token({ sub: "service:orders", roles: ["service"] }));
    const p = products[15]!.id;
    const calls = (auth?: { metadata: Record<string, string> }) => [
      client.getCart({}, auth),
      client.addItem({ productId: p, quantity: 1 }, auth),
      client.updateItem({ productId: p, quantity: 1 }, auth),
      client.removeItem({ productId: p }, auth),
      client.clearCart({}, auth),
    ];
    for (const call of calls()) expect((await rpcError(call)).code).toBe(status.UNAUTHENTICATED);
    for (const call of calls(service)) {
      const err = await rpcError(call);
      expect(err.code).toBe(status.PERMISSION_DENIED);
      expect(err.message).toContain("service token");
    }
    expect(await redis.client.keys(`${redisPrefix}cart:service*`)).toEqual([]);
  });
});

describe("OrderConfirmed", () => {
  const consumed = async (outcome: string) =>
    ((await messagesConsumed.get()).values ?? [])
      .filter((v) => v.labels.queue === orderConfirmedQueue && v.labels.outcome === outcome)
      .reduce((n, v) => n + v.value, 0);

  const publishConfirmed = async (messageId: string, userId: string) => {
    const payload = toBinary(OrderConfirmedSchema, create(OrderConfirmedSchema, { orderId: crypto.randomUUID(), userId, paymentId: crypto.randomUUID() }));
    const { acked } = await broker.publish([{ id: messageId, routingKey: events.orderConfirmed.routingKey, payload, headers: {} }]);
    expect(acked).toEqual([messageId]);
  };

  test("empties the buyer's cart only, once per message: a redelivery after new items leaves them", async () => {
    const [alice, bob] = [await newUser(), await newUser()];
    const [x, y, z] = [products[16]!, products[17]!, products[18]!];
    await client.addItem({ productId: x.id, quantity: 2 }, alice.auth);
    await client.addItem({ productId: y.id, quantity: 1 }, alice.auth);
    await client.addItem({ productId: x.id, quantity: 4 }, bob.auth);

    const messageId = crypto.randomUUID();
    await publishConfirmed(messageId, alice.id);
    await eventually(async () => (await client.getCart({}, alice.auth)).cart?.itemCount === 0, { what: "Alice's cart to be emptied" });
    // Emptied on purpose: the revision moved on (2 adds, then the emptying), so no device takes it for a lost cart.
    expect((await client.getCart({}, alice.auth)).cart?.revision).toBe(3);
    expect(quantities((await client.getCart({}, bob.auth)).cart)).toEqual({ [x.id]: 4 });
    expect(await redis.client.ttl(store.inboxKey(orderConfirmedQueue, messageId))).toBeGreaterThan(7 * 86_400 - 60);

    await client.addItem({ productId: z.id, quantity: 3 }, alice.auth);
    const duplicates = await consumed("duplicate");
    await publishConfirmed(messageId, alice.id);
    await eventually(async () => (await consumed("duplicate")) === duplicates + 1, { what: "the redelivery to be handled" });
    expect(quantities((await client.getCart({}, alice.auth)).cart)).toEqual({ [z.id]: 3 });

    // Another order's message is another message: it empties the cart again.
    await publishConfirmed(crypto.randomUUID(), alice.id);
    await eventually(async () => (await client.getCart({}, alice.auth)).cart?.itemCount === 0, { what: "Alice's cart to be emptied again" });
    expect(quantities((await client.getCart({}, bob.auth)).cart)).toEqual({ [x.id]: 4 });
  });
});

describe("the cart process (main.ts)", () => {
  test("starts healthy, serves the cart from the catalog and empties it on OrderConfirmed", async () => {
    const local = new TestScope();
    try {
      const processVhost = await local.vhost();
      const cart = await local.launch("cart", { CATALOG_ADDR: catalogProcess.grpcAddress, JWKS_URL: issuer.jwksUrl, AMQP_URL: processVhost.url });
      const cartClient = local.add(createClient(CartService, cart.grpcAddress), (c) => c.close());
      const publisher = local.add(await Broker.connect(processVhost.url, { service: "cart-test" }), (b) => b.close());
      const user = await newUser();
      const p = products[20]!;
      const { cart: filled } = await cartClient.addItem({ productId: p.id, quantity: 3 }, user.auth);
      expect(filled?.total?.amountMinor).toBe(p.price!.amountMinor * 3n);
      const payload = toBinary(OrderConfirmedSchema, create(OrderConfirmedSchema, { orderId: crypto.randomUUID(), userId: user.id }));
      await publisher.publish([{ id: crypto.randomUUID(), routingKey: events.orderConfirmed.routingKey, payload, headers: {} }]);
      await eventually(async () => (await cartClient.getCart({}, user.auth)).cart?.itemCount === 0, { what: "the cart process to empty the cart" });
      expect((await fetch(`${cart.httpUrl}/metrics`)).status).toBe(200);
    } finally {
      await local.cleanup();
    }
  }, 30_000);
});

// Last: stops the catalog.
describe("when the catalog is down", () => {
  test("GetCart and the changes are UNAVAILABLE and change nothing; ClearCart still works", async () => {
    const user = await newUser();
    const p = products[19]!;
    await client.addItem({ productId: p.id, quantity: 2 }, user.auth);
    const before = await stored(user.id);
    await catalogProcess.child.stop();

    // One at a time: each failure is awaited as it happens.
    for (const call of [
      () => client.getCart({}, user.auth),
      () => client.addItem({ productId: p.id, quantity: 1 }, user.auth),
      () => client.updateItem({ productId: p.id, quantity: 7 }, user.auth),
      () => client.removeItem({ productId: p.id }, user.auth),
    ]) {
      const err = await rpcError(call());
      expect(err.code).toBe(status.UNAVAILABLE);
      expect(err.message).toContain("catalog");
    }
    expect(await stored(user.id)).toEqual(before);
    await client.clearCart({}, user.auth);
    expect(await storedLines(user.id)).toEqual([]);
  });
});
