import { status } from "@grpc/grpc-js";
import { RpcError } from "@bazaar/platform/errors";
import { createClient } from "@bazaar/platform/grpc/client";
import type { ServiceTokenSource } from "@bazaar/platform/service-token";
import { CatalogService } from "@bazaar/proto/bazaar/catalog/v1/catalog_pb";
import { InventoryService } from "@bazaar/proto/bazaar/inventory/v1/inventory_pb";
import { type Payment, PaymentStatus, PaymentsService } from "@bazaar/proto/bazaar/payments/v1/payments_pb";
import type { ChargeOutcome, CommitOutcome, PricedProducts, ReserveOutcome, SagaPorts } from "./saga-ports.ts";

/** Where the peers are and how long a call may take. */
export interface GrpcPortsOptions {
  catalogAddress: string;
  inventoryAddress: string;
  paymentsAddress: string;
  /** The service's own token: inventory's and payments' saga RPCs are for services only. */
  tokens: Pick<ServiceTokenSource, "token">;
  callTimeoutMs: number;
}

/** The saga's ports over gRPC: catalog, inventory and payments. */
export function grpcSagaPorts(options: GrpcPortsOptions): SagaPorts & { close(): void } {
  const clientOptions = { defaultTimeoutMs: options.callTimeoutMs, token: options.tokens.token };
  // Catalog reads are public; the service token is sent anyway so the catalog's logs show who asked.
  const catalog = createClient(CatalogService, options.catalogAddress, clientOptions);
  const inventory = createClient(InventoryService, options.inventoryAddress, clientOptions);
  const payments = createClient(PaymentsService, options.paymentsAddress, clientOptions);
  const hasCode = (err: unknown, ...codes: status[]) => err instanceof RpcError && codes.includes(err.code);

  return {
    async priceLines(productIds): Promise<PricedProducts> {
      const res = await catalog.batchGetProducts({ ids: [...productIds] });
      const found = new Map(
        res.products.map((p) => [p.id, { id: p.id, name: p.name, unitPriceMinor: Number(p.price?.amountMinor ?? 0n), currency: p.price?.currencyCode ?? "" }]),
      );
      return { found, missing: res.missingIds };
    },

    async reserve(orderId, lines): Promise<ReserveOutcome> {
      try {
        await inventory.reserveStock({ orderId, items: lines.map((l) => ({ productId: l.productId, quantity: l.quantity })) });
        return { kind: "reserved" };
      } catch (err) {
        // FAILED_PRECONDITION names the short product in a "STOCK" violation (inventory.proto);
        // nothing was held (all lines or none).
        if (err instanceof RpcError && err.code === status.FAILED_PRECONDITION) {
          const productIds = err.preconditions.filter((v) => v.type === "STOCK").map((v) => v.subject);
          return { kind: "out_of_stock", productIds, message: err.message };
        }
        throw err;
      }
    },

    async commit(orderId): Promise<CommitOutcome> {
      try {
        await inventory.commitReservation({ orderId });
        return { kind: "committed" };
      } catch (err) {
        // The reservation expired or was released: the stock is no longer held for this order.
        if (hasCode(err, status.FAILED_PRECONDITION, status.NOT_FOUND)) return { kind: "refused", message: (err as RpcError).message };
        throw err;
      }
    },

    async release(orderId) {
      try {
        await inventory.releaseReservation({ orderId });
      } catch (err) {
        // Nothing to release is what we want; anything else (a committed reservation) is not.
        if (!hasCode(err, status.NOT_FOUND)) throw err;
      }
    },

    async charge(request): Promise<ChargeOutcome> {
      let payment: Payment | undefined;
      try {
        ({ payment } = await payments.charge({
          idempotencyKey: request.idempotencyKey,
          orderId: request.orderId,
          userId: request.userId,
          amount: { currencyCode: request.currency, amountMinor: BigInt(request.amountMinor) },
          paymentMethodToken: request.paymentMethodToken ?? "",
        }));
      } catch (err) {
        // The token expired, was used, or is not this user's (a PAYMENT_METHOD_* violation,
        // payments.proto): payments charged nothing and never will with this token.
        if (err instanceof RpcError && err.code === status.FAILED_PRECONDITION && err.preconditions.some((v) => v.type.startsWith("PAYMENT_METHOD_"))) {
          return { kind: "payment_method_unusable", message: err.message };
        }
        throw err;
      }
      if (!payment) throw new Error("payments answered Charge without a payment");
      switch (payment.status) {
        // A replayed charge of a payment refunded since was captured all the same.
        case PaymentStatus.CAPTURED:
        case PaymentStatus.REFUNDED:
          return { kind: "captured", paymentId: payment.id };
        case PaymentStatus.FAILED:
          return { kind: "declined", paymentId: payment.id, reason: payment.failureReason };
        default:
          throw new Error(`payments answered Charge with payment status ${payment.status}`);
      }
    },

    async refund(request) {
      try {
        await payments.refund({ idempotencyKey: request.idempotencyKey, paymentId: request.paymentId, reason: request.reason });
      } catch (err) {
        // Refunded before (by this key or another): the outcome we want. Ask instead of guessing.
        if (!hasCode(err, status.FAILED_PRECONDITION, status.ALREADY_EXISTS)) throw err;
        const { payment } = await payments.getPayment({ id: request.paymentId });
        if (payment?.status !== PaymentStatus.REFUNDED) throw err;
      }
    },

    close() {
      catalog.close();
      inventory.close();
      payments.close();
    },
  };
}
