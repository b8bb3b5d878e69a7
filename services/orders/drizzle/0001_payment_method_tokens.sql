-- Orders stops holding cards: a saga carries the shopper's payment method token instead (payments
-- tokenizes the card; only payments ever sees it).
--
-- A saga still holding a card when this runs (placed before the change, not yet past its charge)
-- cannot be charged any more: payments refuses cards now, and the card is about to be dropped. It
-- is cancelled, through the saga's own cancellation path, so nothing is left PENDING and
-- nothing is charged twice: cancel_requested makes the executor compensate before its next
-- forward step. One at reserve releases whatever it may hold; one at charge that never tried it
-- releases; one at charge that may have reached payments replays the charge without a payment
-- method (payments then answers with the payment that idempotency key made, if any), and a
-- captured payment is refunded before the stock is released. The reason below, set first, is
-- the one the shopper reads (the first reason wins).
UPDATE "sagas"
SET "cancel_requested" = true,
	"cancel_reason" = coalesce("cancel_reason", 'We changed how card details are handled while your order was being processed, so it could not be completed; any payment taken has been refunded. Please place the order again.'),
	"cancel_code" = coalesce("cancel_code", 'card_details_discarded'),
	"next_attempt_at" = least("next_attempt_at", now()),
	"updated_at" = now()
WHERE "card_number" IS NOT NULL AND "step" <> 'done';--> statement-breakpoint
-- Wiped before the columns go: a dropped column's values stay in each row on disk until the row
-- is rewritten, and this rewrites the rows that held a card (their old versions are reclaimed by
-- vacuum).
UPDATE "sagas" SET "card_number" = NULL, "card_expiry_month" = NULL, "card_expiry_year" = NULL, "card_cvc" = NULL
WHERE "card_number" IS NOT NULL OR "card_expiry_month" IS NOT NULL OR "card_expiry_year" IS NOT NULL OR "card_cvc" IS NOT NULL;--> statement-breakpoint
ALTER TABLE "sagas" DROP CONSTRAINT "sagas_card_only_until_charged";--> statement-breakpoint
ALTER TABLE "sagas" ADD COLUMN "payment_method_token" text;--> statement-breakpoint
ALTER TABLE "sagas" DROP COLUMN "card_number";--> statement-breakpoint
ALTER TABLE "sagas" DROP COLUMN "card_expiry_month";--> statement-breakpoint
ALTER TABLE "sagas" DROP COLUMN "card_expiry_year";--> statement-breakpoint
ALTER TABLE "sagas" DROP COLUMN "card_cvc";--> statement-breakpoint
ALTER TABLE "sagas" ADD CONSTRAINT "sagas_payment_method_token_only_until_charged" CHECK ("sagas"."step" in ('reserve', 'charge') or "sagas"."payment_method_token" is null);