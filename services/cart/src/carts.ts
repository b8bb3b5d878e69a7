import type { MessageInitShape } from "@bufbuild/protobuf";
import { status } from "@grpc/grpc-js";
import { FailedPreconditionError, NotFoundError, RpcError } from "@bazaar/platform/errors";
import type { GrpcClient } from "@bazaar/platform/grpc/client";
import { log } from "@bazaar/platform/log";
import type { CartSchema } from "@bazaar/proto/bazaar/cart/v1/cart_pb";
import type { CatalogService, Product } from "@bazaar/proto/bazaar/catalog/v1/catalog_pb";
import type { CartStore, StoredCart } from "./cart-store.ts";

/** A cart as the API returns it. */
export type PricedCart = MessageInitShape<typeof CartSchema>;

/** What one BatchGetProducts call said about a set of product ids. */
interface CatalogView {
  found: Map<string, Product>;
  missing: Set<string>;
}

/** Catalog answers that mean "not now" rather than "never": the caller may retry. */
const transientCodes = new Set([status.UNAVAILABLE, status.DEADLINE_EXCEEDED, status.RESOURCE_EXHAUSTED, status.ABORTED, status.CANCELLED]);

/** Options of {@link Carts}. */
export interface CartsOptions {
  /** The only currency carts hold (ISO 4217); also the currency of an empty cart's total. */
  currency: string;
}

/**
 * The carts: the Redis store for quantities, the catalog for which products exist and what
 * they cost. Each call asks the catalog once (one BatchGetProducts for every line), before
 * changing anything, so when the catalog is down a call fails UNAVAILABLE and the cart is
 * left as it was; prices are never made up. Lines whose product the catalog no longer has
 * are dropped from the cart.
 */
export class Carts {
  constructor(
    private readonly store: CartStore,
    private readonly catalog: GrpcClient<typeof CatalogService>,
    private readonly options: CartsOptions,
  ) {}

  /** The user's cart, priced. */
  async get(userId: string): Promise<PricedCart> {
    const { stored, view } = await this.snapshot(userId);
    return this.priced(userId, stored, view);
  }

  /** Adds units of a catalog product (NOT_FOUND if the catalog has none with this id). */
  async add(userId: string, productId: string, quantity: number): Promise<PricedCart> {
    const { view } = await this.snapshot(userId, productId);
    const product = view.found.get(productId);
    if (!product) throw new NotFoundError(`no product has id ${productId}`);
    const currency = product.price?.currencyCode ?? "";
    if (currency !== this.options.currency) {
      throw new FailedPreconditionError(
        `product ${productId} is priced in ${currency || "no currency"}, and carts hold only products priced in ${this.options.currency}`,
      );
    }
    return this.priced(userId, await this.store.add(userId, productId, quantity), view);
  }

  /** Sets a line's units; 0 removes it. NOT_FOUND if the cart has no such line. */
  async update(userId: string, productId: string, quantity: number): Promise<PricedCart> {
    const { view } = await this.snapshot(userId);
    return this.priced(userId, await this.store.setQuantity(userId, productId, quantity), view);
  }

  /** Removes a line; removing a line that is not there succeeds (the cart is as asked). */
  async remove(userId: string, productId: string): Promise<PricedCart> {
    const { view } = await this.snapshot(userId);
    return this.priced(userId, await this.store.remove(userId, [productId]), view);
  }

  /** Empties the cart, keeping its revision (needs no prices, so it works while the catalog is down). */
  async clear(userId: string): Promise<void> {
    await this.store.clear(userId);
  }

  /**
   * Reads the cart and asks the catalog about its products (and `also`), dropping the lines
   * whose product is gone; returns the remaining cart and what the catalog said.
   */
  private async snapshot(userId: string, also?: string): Promise<{ stored: StoredCart; view: CatalogView }> {
    let stored = await this.store.cart(userId);
    const view = await this.lookup([...stored.lines.map((l) => l.productId), ...(also ? [also] : [])]);
    if (stored.lines.some((l) => view.missing.has(l.productId))) stored = await this.dropGone(userId, stored, view);
    return { stored, view };
  }

  /** One BatchGetProducts call; UNAVAILABLE if the catalog cannot answer. */
  private async lookup(ids: readonly string[]): Promise<CatalogView> {
    const unique = [...new Set(ids)];
    const view: CatalogView = { found: new Map(), missing: new Set() };
    if (unique.length === 0) return view;
    const response = await this.catalog.batchGetProducts({ ids: unique }).catch((err: unknown) => {
      if (err instanceof RpcError && transientCodes.has(err.code)) {
        log.warn("the catalog did not answer", { code: err.codeName, err: err.message });
        // The client tried every catalog replica already; another cart replica would do the same.
        throw new RpcError(status.UNAVAILABLE, "the catalog cannot be reached to check products and prices; try again shortly", { doNotRetry: true });
      }
      // Any other answer is a bug on one side or the other, not the caller's to act on: INTERNAL.
      throw new Error(`the catalog refused BatchGetProducts: ${(err as Error).message}`, { cause: err });
    });
    for (const p of response.products) view.found.set(p.id, p);
    // Whatever the catalog did not return counts as gone (missing_ids lists them anyway).
    for (const id of unique) if (!view.found.has(id)) view.missing.add(id);
    return view;
  }

  /** Removes the lines whose product the catalog does not have; returns the rest. */
  private async dropGone(userId: string, { lines }: StoredCart, view: CatalogView): Promise<StoredCart> {
    const gone = lines.filter((l) => view.missing.has(l.productId)).map((l) => l.productId);
    log.warn("dropped cart lines whose products the catalog no longer has", { userId, productIds: gone });
    return this.store.remove(userId, gone);
  }

  /**
   * Prices lines with what the catalog said. Lines added by a concurrent call since the
   * snapshot are looked up in one more call (rare); any gone product is dropped.
   */
  private async priced(userId: string, stored: StoredCart, view: CatalogView): Promise<PricedCart> {
    const unknown = stored.lines.map((l) => l.productId).filter((id) => !view.found.has(id) && !view.missing.has(id));
    if (unknown.length) {
      const more = await this.lookup(unknown);
      for (const [id, p] of more.found) view.found.set(id, p);
      for (const id of more.missing) view.missing.add(id);
    }
    if (stored.lines.some((l) => view.missing.has(l.productId))) stored = await this.dropGone(userId, stored, view);

    let total = 0n;
    let itemCount = 0;
    const priced = stored.lines.map((line) => {
      const product = view.found.get(line.productId)!;
      const unit = product.price?.amountMinor ?? 0n;
      const currency = product.price?.currencyCode ?? "";
      if (currency !== this.options.currency) {
        // The product's currency changed after it was added; a total in two currencies means nothing.
        throw new FailedPreconditionError(
          `product ${line.productId} is now priced in ${currency || "no currency"}, and carts hold only products priced in ${this.options.currency}: remove it from the cart`,
        );
      }
      const lineTotal = unit * BigInt(line.quantity);
      total += lineTotal;
      itemCount += line.quantity;
      return {
        productId: line.productId,
        name: product.name,
        quantity: line.quantity,
        unitPrice: { currencyCode: currency, amountMinor: unit },
        lineTotal: { currencyCode: currency, amountMinor: lineTotal },
        imageUrl: product.imageUrl,
      };
    });
    return { userId, lines: priced, total: { currencyCode: this.options.currency, amountMinor: total }, itemCount, revision: stored.revision };
  }
}
