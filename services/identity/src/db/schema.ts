import { sql } from "drizzle-orm";
import { check, index, jsonb, pgTable, text, timestamp, uuid } from "drizzle-orm/pg-core";
import type { JWK } from "jose";

/** Accounts. The email is stored lower-cased, so the unique index is case-insensitive. */
export const users = pgTable(
  "users",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    email: text("email").notNull().unique("users_email_unique"),
    displayName: text("display_name").notNull(),
    /** The argon2id PHC string, e.g. `$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`. */
    passwordHash: text("password_hash").notNull(),
    roles: text("roles").array().notNull().default(sql`'{customer}'::text[]`),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [check("users_email_lower_case", sql`${t.email} = lower(${t.email})`)],
);

/**
 * Refresh tokens: one row per token ever issued, so a token presented a second time is
 * recognised (reuse detection). Only the SHA-256 of the opaque token is kept: a copy of this
 * table does not let anyone refresh. A family is the chain of tokens of one sign-in; reuse or
 * logout revokes the whole family.
 */
export const refreshTokens = pgTable(
  "refresh_tokens",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    userId: uuid("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    familyId: uuid("family_id").notNull(),
    /** Hex SHA-256 of the token. */
    tokenHash: text("token_hash").notNull().unique("refresh_tokens_token_hash_unique"),
    expiresAt: timestamp("expires_at", { withTimezone: true }).notNull(),
    /** Set when the token was exchanged by Refresh; a second exchange is reuse. */
    usedAt: timestamp("used_at", { withTimezone: true }),
    /** The token that replaced this one. */
    replacedBy: uuid("replaced_by"),
    /** Set by Logout or by reuse detection (on every token of the family). */
    revokedAt: timestamp("revoked_at", { withTimezone: true }),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    index("refresh_tokens_family_idx").on(t.familyId),
    index("refresh_tokens_user_idx").on(t.userId),
    // The purge's scan for expired tokens (refresh-token-purge.ts).
    index("refresh_tokens_expires_at_idx").on(t.expiresAt),
    check("refresh_tokens_token_hash_sha256", sql`${t.tokenHash} ~ '^[0-9a-f]{64}$'`),
  ],
);

/**
 * The ES256 keys access tokens are signed with, each with its lifecycle in explicit times
 * (signing-keys.ts keeps them): published in the JWKS from `created_at`, signing from
 * `signs_from` (a lead after it was published, so every verifier has it first), until
 * `signs_until` (when its successor starts), and in the JWKS until `published_until` (after the
 * last token it signed has expired), when the row, private half and all, is deleted.
 */
export const signingKeys = pgTable(
  "signing_keys",
  {
    /** The RFC 7638 thumbprint of the public key; the `kid` of tokens and of the JWKS entry. */
    kid: text("kid").primaryKey(),
    privateJwk: jsonb("private_jwk").$type<JWK>().notNull(),
    publicJwk: jsonb("public_jwk").$type<JWK>().notNull(),
    /** When the key was made, and so published. */
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
    /** From when new tokens are signed with it. */
    signsFrom: timestamp("signs_from", { withTimezone: true }).notNull().defaultNow(),
    /** When its successor takes over; unset while it has none. */
    signsUntil: timestamp("signs_until", { withTimezone: true }),
    /** When it leaves the JWKS: signs_until plus the longest token lifetime and a clock-skew allowance. */
    publishedUntil: timestamp("published_until", { withTimezone: true }),
  },
  (t) => [
    check("signing_keys_signs_after_published", sql`${t.signsFrom} >= ${t.createdAt}`),
    check("signing_keys_published_until_after_retired", sql`${t.publishedUntil} is null or ${t.publishedUntil} >= ${t.signsUntil}`),
  ],
);

/** A signing key's row. */
export type SigningKeyRow = typeof signingKeys.$inferSelect;

/** A user row. */
export type UserRow = typeof users.$inferSelect;

// The transactional outbox: UserRegistered is written with the new account.
export { outbox } from "@bazaar/platform/messaging/tables";
