import { status } from "@grpc/grpc-js";
import { NotFoundError, RpcError } from "@bazaar/platform/errors";
import type { GrpcClient } from "@bazaar/platform/grpc/client";
import { log } from "@bazaar/platform/log";
import type { CatalogService } from "@bazaar/proto/bazaar/catalog/v1/catalog_pb";
import type { OutboxSignal } from "@bazaar/platform/messaging/outbox";
import type { InventoryDatabase, InventoryStore } from "./inventory-store.ts";

/**
 * Stock rows for products the catalog announced while this service's queue did not exist yet.
 *
 * RabbitMQ drops an event that no queue is bound for, and on a fresh platform the catalog
 * seeds and publishes while inventory is still starting. So, after its queue is bound,
 * inventory asks the catalog once for every product and creates the rows that are missing:
 * a product committed before the queue existed is in that listing, and one committed after
 * it has its event queued. Rows are only ever added, never changed, so this and the event
 * consumer agree whichever comes first.
 */
export class CatalogBackfill {
  private stopped = false;
  private running: Promise<void> | undefined;
  private readonly wakeUp = new AbortController();

  constructor(
    private readonly catalog: GrpcClient<typeof CatalogService>,
    private readonly database: InventoryDatabase,
    private readonly store: InventoryStore,
    private readonly outbox: OutboxSignal,
  ) {}

  /** Pages through the catalog once; returns how many stock rows it created. */
  async runOnce(): Promise<number> {
    let created = 0;
    let pageToken = "";
    do {
      const page = await this.catalog.listProducts({ pageSize: 100, pageToken });
      const ids = page.products.map((p) => p.id.toLowerCase());
      created += await this.database.db.transaction(async (tx) => (await this.store.addProducts(tx, ids)).length);
      pageToken = page.nextPageToken;
    } while (pageToken && !this.stopped);
    if (created) this.outbox.wake();
    return created;
  }

  /**
   * Makes sure `productId` has a stock row when the catalog has the product, for an admin
   * stocking it: a product created a moment ago may have no row yet, its ProductUpdated still
   * on the way. A row is the sign that inventory knows the product; without one the catalog,
   * which owns products, is asked. NOT_FOUND if it has no such product; UNAVAILABLE (nothing
   * changed) if it cannot be asked.
   */
  async ensureProduct(productId: string): Promise<void> {
    if (await this.store.hasProduct(productId)) return;
    await this.catalog.getProduct({ id: productId }, { timeoutMs: 3_000 }).catch((err: unknown) => {
      if (err instanceof RpcError && err.code === status.NOT_FOUND) {
        throw new NotFoundError(`the catalog has no product ${productId}: create the product first, then stock it`);
      }
      // The client tried every catalog replica already; another inventory replica would do the same.
      throw new RpcError(status.UNAVAILABLE, `cannot check product ${productId} with the catalog right now; try again (${(err as Error).message})`, {
        doNotRetry: true,
      });
    });
    const created = await this.database.db.transaction(async (tx) => (await this.store.addProducts(tx, [productId])).length);
    if (created) this.outbox.wake();
  }

  /** Runs in the background until one pass succeeds, retrying with backoff while the catalog is unreachable. */
  start(): this {
    this.running = (async () => {
      for (let attempt = 0; !this.stopped; attempt++) {
        try {
          const created = await this.runOnce();
          log.info("checked the catalog for products without stock", { created });
          return;
        } catch (err) {
          // The catalog starting alongside is expected; keep quiet about the first few tries.
          const fields = { attempt, err: (err as Error).message };
          if (attempt >= 3) log.warn("cannot list the catalog's products yet; retrying", fields);
          else log.info("cannot list the catalog's products yet; retrying", fields);
          await sleep(Math.min(30_000, 500 * 2 ** attempt), this.wakeUp.signal);
        }
      }
    })();
    return this;
  }

  /** Stops retrying and waits for a pass in progress. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.wakeUp.abort();
    await this.running;
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener(
      "abort",
      () => {
        clearTimeout(timer);
        resolve();
      },
      { once: true },
    );
  });
}
