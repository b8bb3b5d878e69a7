import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { configureLogging } from "@bazaar/platform/log";
import { eventually } from "@bazaar/testkit/eventually";
import { stockedProducts } from "@bazaar/testkit/test-platform";
import type { OrderView } from "../src/shape.ts";
import { type BffReplica, type BffTestPlatform, startBffTestPlatform } from "./support/bff-platform.ts";
import { body, cards, TestBrowser } from "./support/browser.ts";
import { type SseMessage, SseReader } from "./support/sse.ts";

// Live order status: GET /api/events streams the user's order updates, which each BFF replica
// learns from orders' events on a queue of its own. Every service is a real process.
let env: BffTestPlatform;
let second: BffReplica;

beforeAll(async () => {
  configureLogging("bff-test", "error");
  env = await startBffTestPlatform({}, { events: { pingMs: 200 } });
  second = await env.replica();
}, 90_000);

afterAll(async () => {
  await env?.cleanup();
}, 60_000);

/** A signed-in shopper with one unit of a stocked product in the cart. */
async function shopperWithCart(): Promise<TestBrowser> {
  const b = new TestBrowser(env.bff.app);
  await b.signUp();
  const [product] = await stockedProducts(env.platform.clients, 1, 1);
  expect((await b.post("/api/cart/items", { productId: product!.id, quantity: 1 })).status).toBe(200);
  return b;
}

async function openEvents(b: TestBrowser, headers: Record<string, string> = {}): Promise<SseReader> {
  const res = await b.get("/api/events", headers);
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toContain("text/event-stream");
  return new SseReader(res);
}

const orderOf = (m: SseMessage) => JSON.parse(m.data) as OrderView;
const isFinal = (id: string) => (m: SseMessage) => m.event === "order" && orderOf(m).id === id && orderOf(m).status !== "PENDING";

describe("GET /api/events", () => {
  test("streams an order's updates as it goes through, PENDING then CONFIRMED, each with an id", async () => {
    const b = await shopperWithCart();
    const stream = await openEvents(b);
    try {
      const { order } = await body<{ order: OrderView }>(await b.checkout(cards.good));
      const updates = (await stream.until(isFinal(order.id))).filter((m) => m.event === "order");
      expect(updates.map((m) => orderOf(m).status)).toEqual(["PENDING", "CONFIRMED"]);
      for (const m of updates) {
        expect(m.id).toMatch(/^\d+-[\w-]+$/);
        expect(orderOf(m)).toMatchObject({ id: order.id, total: order.total, items: order.items, cancelReason: null });
      }
      expect(new Set(updates.map((m) => m.id)).size).toBe(2);
    } finally {
      await stream.close();
    }
  });

  test("a declined card streams CANCELLED with the reason", async () => {
    const b = await shopperWithCart();
    const stream = await openEvents(b);
    try {
      const { order } = await body<{ order: OrderView }>(await b.checkout(cards.declined));
      const last = (await stream.until(isFinal(order.id))).at(-1)!;
      expect(orderOf(last).status).toBe("CANCELLED");
      expect(orderOf(last).cancelReason?.toLowerCase()).toContain("declined");
    } finally {
      await stream.close();
    }
  });

  test("a reconnect with Last-Event-ID gets the updates it missed, also from another replica", async () => {
    const b = await shopperWithCart();
    const stream = await openEvents(b);
    const { order } = await body<{ order: OrderView }>(await b.checkout(cards.good));
    const first = (await stream.until((m) => m.event === "order" && orderOf(m).id === order.id)).at(-1)!;
    expect(orderOf(first).status).toBe("PENDING");
    // The tab goes away before the order is final.
    await stream.close();
    await eventually(async () => (await body<{ order: OrderView }>(await b.get(`/api/orders/${order.id}`))).order.status === "CONFIRMED", {
      what: "the order to be confirmed",
    });

    for (const app of [env.bff.app, second.app]) {
      const again = await openEvents(b.on(app), { "last-event-id": first.id! });
      try {
        const replayed = await again.next();
        expect(replayed?.event).toBe("order");
        expect(orderOf(replayed!)).toMatchObject({ id: order.id, status: "CONFIRMED" });
        expect(replayed!.id).not.toBe(first.id);
      } finally {
        await again.close();
      }
    }
    // Without an id there is nothing to replay: the stream starts with what happens next.
    const fresh = await openEvents(b);
    try {
      await expect(fresh.next(600)).rejects.toThrow("no server-sent event");
    } finally {
      await fresh.close();
    }
  });

  test("pings keep the stream alive, and signing out ends it", async () => {
    const b = await shopperWithCart();
    const stream = await openEvents(b);
    const probe = stream.next(700).catch(() => undefined);
    await probe;
    expect(stream.comments).toContain("ping");
    expect((await b.post("/api/auth/signout")).status).toBe(204);
    await stream.waitForEnd(3_000);
    expect(stream.done).toBe(true);
  });

  test("a user's stream gets only their own orders", async () => {
    const watcher = await shopperWithCart();
    const stream = await openEvents(watcher);
    try {
      const other = await shopperWithCart();
      await other.checkout(cards.good);
      const { order } = await body<{ order: OrderView }>(await watcher.checkout(cards.good));
      const updates = (await stream.until(isFinal(order.id))).filter((m) => m.event === "order");
      expect(new Set(updates.map((m) => orderOf(m).id))).toEqual(new Set([order.id]));
    } finally {
      await stream.close();
    }
  });

  test("when the process stops serving, open streams end (shutdown is not held up) and new ones are told to retry", async () => {
    let serving = true;
    const draining = await env.replica({ isHealthy: () => serving });
    const b = (await shopperWithCart()).on(draining.app);
    const stream = await openEvents(b);
    serving = false;
    await stream.waitForEnd(2_000);
    const late = await b.get("/api/events");
    expect(late.status).toBe(200);
    expect(await late.text()).toBe("retry: 1000\n\n");
  });

  test("after the RabbitMQ connection drops and comes back, an order's updates still reach its stream", async () => {
    // The connection that holds the BFF's own (exclusive) order-events queue, per rabbitmqctl.
    const liveQueueOwner = async () => {
      const proc = Bun.spawn(["rabbitmqctl", "-q", "list_queues", "-p", env.platform.vhost, "name", "owner_pid"], { stdout: "pipe", stderr: "ignore" });
      const [out] = await Promise.all([new Response(proc.stdout).text(), proc.exited]);
      return out
        .split("\n")
        .map((line) => line.trim().split(/\s+/))
        .find(([name]) => name === env.bff.liveQueue)?.[1];
    };
    const b = await shopperWithCart();
    const before = await eventually(liveQueueOwner, { what: "the BFF's order-events queue" });
    // Every connection of the platform's vhost, from the broker's side, as a network cut would.
    const cut = Bun.spawn(["rabbitmqctl", "-q", "close_all_connections", "-p", env.platform.vhost, "test: network cut"], {
      stdout: "ignore",
      stderr: "ignore",
    });
    expect(await cut.exited).toBe(0);
    // The queue went with the old connection; the BFF declares it again on its new one.
    await eventually(
      async () => {
        const owner = await liveQueueOwner();
        return owner !== undefined && owner !== before ? owner : undefined;
      },
      { what: "the BFF's order-events queue on a new connection", timeoutMs: 30_000 },
    );
    const stream = await openEvents(b);
    try {
      const { order } = await body<{ order: OrderView }>(await b.checkout(cards.good));
      const updates = (await stream.until(isFinal(order.id), 30_000)).filter((m) => m.event === "order");
      expect(updates.map((m) => orderOf(m).status)).toEqual(["PENDING", "CONFIRMED"]);
    } finally {
      await stream.close();
    }
  }, 90_000);

  test("closing streams unregisters them", async () => {
    await eventually(async () => env.bff.live.openStreams === 0 && second.live.openStreams === 0, { what: "earlier streams to be gone", timeoutMs: 3_000 });
    const b = await shopperWithCart();
    const streams = [await openEvents(b), await openEvents(b)];
    await eventually(async () => env.bff.live.openStreams === 2, { what: "two open streams", timeoutMs: 3_000 });
    for (const s of streams) await s.close();
    await eventually(async () => env.bff.live.openStreams === 0, { what: "no open streams", timeoutMs: 3_000 });
  });
});
