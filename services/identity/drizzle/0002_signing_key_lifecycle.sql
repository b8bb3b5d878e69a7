ALTER TABLE "signing_keys" ADD COLUMN "signs_from" timestamp with time zone DEFAULT now() NOT NULL;--> statement-breakpoint
ALTER TABLE "signing_keys" ADD COLUMN "signs_until" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "signing_keys" ADD COLUMN "published_until" timestamp with time zone;--> statement-breakpoint
-- Added by hand to the generated migration: keys from before the lifecycle signed from when
-- they were made (the newest then signs, and the planner retires the older ones); a key taken
-- out of use (active = false) was not published, and goes with the column.
UPDATE "signing_keys" SET "signs_from" = "created_at";--> statement-breakpoint
DELETE FROM "signing_keys" WHERE NOT "active";--> statement-breakpoint
ALTER TABLE "signing_keys" DROP COLUMN "active";--> statement-breakpoint
ALTER TABLE "signing_keys" ADD CONSTRAINT "signing_keys_signs_after_published" CHECK ("signing_keys"."signs_from" >= "signing_keys"."created_at");--> statement-breakpoint
ALTER TABLE "signing_keys" ADD CONSTRAINT "signing_keys_published_until_after_retired" CHECK ("signing_keys"."published_until" is null or "signing_keys"."published_until" >= "signing_keys"."signs_until");