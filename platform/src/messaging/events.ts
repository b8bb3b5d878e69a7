import type { DescMessage } from "@bufbuild/protobuf";
import {
  OrderCancelledSchema,
  OrderConfirmedSchema,
  OrderPlacedSchema,
  PaymentCapturedSchema,
  PaymentFailedSchema,
  PaymentRefundedSchema,
  ProductUpdatedSchema,
  StockChangedSchema,
  UserRegisteredSchema,
} from "@bazaar/proto/bazaar/events/v1/events_pb";

/** An event: its routing key on the `bazaar.events` exchange and its protobuf schema. */
export interface EventType<S extends DescMessage = DescMessage> {
  readonly routingKey: string;
  readonly schema: S;
}

function event<S extends DescMessage>(routingKey: string, schema: S): EventType<S> {
  return { routingKey, schema };
}

/**
 * Every event of Bazaar, by name. The routing key is `<aggregate>.<what happened>.v<N>`: a
 * breaking change to an event is a new version with a new key, published beside the old one
 * until every consumer has moved.
 */
export const events = {
  userRegistered: event("user.registered.v1", UserRegisteredSchema),
  productUpdated: event("product.updated.v1", ProductUpdatedSchema),
  stockChanged: event("stock.changed.v1", StockChangedSchema),
  orderPlaced: event("order.placed.v1", OrderPlacedSchema),
  orderConfirmed: event("order.confirmed.v1", OrderConfirmedSchema),
  orderCancelled: event("order.cancelled.v1", OrderCancelledSchema),
  paymentCaptured: event("payment.captured.v1", PaymentCapturedSchema),
  paymentFailed: event("payment.failed.v1", PaymentFailedSchema),
  paymentRefunded: event("payment.refunded.v1", PaymentRefundedSchema),
} as const;

/** The exchange every event is published to. */
export const eventsExchange = "bazaar.events";
/** Where rejected (poison) messages go, routed by the name of the queue they came from. */
export const deadLetterExchange = "bazaar.events.dlx";
