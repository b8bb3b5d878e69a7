CREATE TABLE "payment_methods" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"token_hash" text NOT NULL,
	"user_id" uuid NOT NULL,
	"processor_reference" text NOT NULL,
	"card_last4" text NOT NULL,
	"card_brand" text NOT NULL,
	"card_expiry_month" smallint NOT NULL,
	"card_expiry_year" smallint NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"expires_at" timestamp with time zone NOT NULL,
	"payment_id" uuid,
	CONSTRAINT "payment_methods_token_hash_unique" UNIQUE("token_hash"),
	CONSTRAINT "payment_methods_payment_id_unique" UNIQUE("payment_id"),
	CONSTRAINT "payment_methods_card_last4_digits" CHECK ("payment_methods"."card_last4" ~ '^[0-9]{4}$'),
	CONSTRAINT "payment_methods_expiry_month_range" CHECK ("payment_methods"."card_expiry_month" between 1 and 12)
);
--> statement-breakpoint
ALTER TABLE "payment_methods" ADD CONSTRAINT "payment_methods_payment_id_payments_id_fk" FOREIGN KEY ("payment_id") REFERENCES "public"."payments"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "payment_methods_expires_at_idx" ON "payment_methods" USING btree ("expires_at");