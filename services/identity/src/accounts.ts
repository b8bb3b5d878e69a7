import { createHash, randomBytes } from "node:crypto";
import { and, eq, isNull, sql } from "drizzle-orm";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import { postgresError } from "@bazaar/platform/db";
import { AlreadyExistsError, NotFoundError, UnauthenticatedError } from "@bazaar/platform/errors";
import { log } from "@bazaar/platform/log";
import { events } from "@bazaar/platform/messaging/events";
import { enqueueEvent, type OutboxSignal } from "@bazaar/platform/messaging/outbox";
import type { AccessTokenIssuer, AccessToken } from "./access-tokens.ts";
import { refreshTokens, type UserRow, users } from "./db/schema.ts";
import type { LoginThrottle } from "./login-throttle.ts";
import { hashPassword, needsRehash, verifyPassword } from "./passwords.ts";
import { refreshReuseDetected, signIns } from "./metrics.ts";
import type { IdentityDatabase } from "./signing-keys.ts";

/** A user as identity hands it out: everything but the password hash. */
export type User = Omit<UserRow, "passwordHash">;

/** What a sign-in (register, login, refresh) returns. */
export interface Session {
  access: AccessToken;
  refreshToken: string;
  refreshExpiresAt: Date;
}

/** How {@link Accounts} issues tokens. */
export interface AccountsOptions {
  /** Lifetime of a user's access token, in seconds. */
  accessTokenTtlSeconds: number;
  /** Lifetime of each refresh token, in seconds. */
  refreshTokenTtlSeconds: number;
}

/** A new account, already validated. */
export interface NewAccount {
  email: string;
  password: string;
  displayName: string;
  roles?: string[];
}

type Tx = Parameters<Parameters<IdentityDatabase["db"]["transaction"]>[0]>[0];

const wrongCredentials = "email or password is wrong";
/** Refresh tokens are 32 random bytes, base64url: 43 characters. */
const refreshTokenPattern = /^[A-Za-z0-9_-]{43}$/;

const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");

function withoutHash({ passwordHash: _passwordHash, ...user }: UserRow): User {
  return user;
}

/**
 * Accounts and sessions: registration, password sign-in, refresh-token rotation with reuse
 * detection and logout. (Services get their tokens at the token endpoint, token-endpoint.ts.)
 */
export class Accounts {
  constructor(
    private readonly database: IdentityDatabase,
    private readonly tokens: AccessTokenIssuer,
    private readonly throttle: LoginThrottle,
    private readonly options: AccountsOptions,
    private readonly outbox: OutboxSignal = { wake() {} },
  ) {}

  /** Starts a new refresh-token family (a sign-in) in `tx`. */
  private async newRefreshToken(tx: Tx, userId: string, familyId: string): Promise<{ id: string; token: string; expiresAt: Date }> {
    const token = randomBytes(32).toString("base64url");
    const expiresAt = new Date(Date.now() + this.options.refreshTokenTtlSeconds * 1000);
    const [row] = await tx
      .insert(refreshTokens)
      .values({ userId, familyId, tokenHash: sha256(token), expiresAt })
      .returning({ id: refreshTokens.id });
    if (!row) throw new Error("the refresh token insert returned no row");
    return { id: row.id, token, expiresAt };
  }

  private async session(user: Pick<UserRow, "id" | "roles">, refresh: { token: string; expiresAt: Date }): Promise<Session> {
    const access = await this.tokens.issue(user.id, user.roles, this.options.accessTokenTtlSeconds);
    return { access, refreshToken: refresh.token, refreshExpiresAt: refresh.expiresAt };
  }

  /**
   * Creates an account, without signing it in, and resolves alike whether the email was free
   * or taken: the answer must not tell who has an account. The UserRegistered event is written
   * in the same transaction. Both paths hash the password first, so their timing is alike too.
   * A sign-up from `address` that finds its email taken counts as a failed sign-in of that
   * address (see {@link LoginThrottle.signUpProbe}).
   */
  async register(account: NewAccount, address: string): Promise<void> {
    const probe = await this.throttle.signUpProbe(address);
    try {
      await this.insertAccount(account, false);
    } catch (err) {
      // A taken email is answered as a free one, and counts against the address; any other
      // failure does not count, and is the caller's to see.
      if (err instanceof AlreadyExistsError) return;
      await this.throttle.clearSignUpProbe(probe);
      throw err;
    }
    await this.throttle.clearSignUpProbe(probe);
  }

  /** Creates an account (the seed's admin): ALREADY_EXISTS if the email is taken, not throttled. */
  async createAccount(account: NewAccount): Promise<User> {
    return (await this.insertAccount(account, false)).user;
  }

  private async insertAccount(account: NewAccount, signIn: boolean) {
    const passwordHash = await hashPassword(account.password);
    const { user, refresh } = await this.database.db
      .transaction(async (tx) => {
        const [created] = await tx
          .insert(users)
          .values({ email: account.email, displayName: account.displayName, passwordHash, roles: account.roles ?? ["customer"] })
          .returning();
        if (!created) throw new Error("the user insert returned no row");
        await enqueueEvent(tx, events.userRegistered, {
          userId: created.id,
          email: created.email,
          displayName: created.displayName,
          occurTime: timestampNow(),
        });
        return { user: created, refresh: signIn ? await this.newRefreshToken(tx, created.id, crypto.randomUUID()) : undefined };
      })
      .catch((err: unknown) => {
        if (postgresError(err)?.code === "23505") throw new AlreadyExistsError("an account with this email exists already; sign in instead");
        throw err;
      });
    this.outbox.wake();
    log.info("user registered", { userId: user.id });
    return { user: withoutHash(user), refresh };
  }

  /**
   * Signs in with email and password from the client at `address`. A wrong password and an
   * unknown email get the same answer after the same work; too many failures from that address
   * are RESOURCE_EXHAUSTED (see {@link LoginThrottle}).
   */
  async login(email: string, password: string, address: string): Promise<{ user: User; session: Session }> {
    const attempt = await this.throttle.attempt(email, address).catch((err: unknown) => {
      signIns.inc({ outcome: "throttled" });
      throw err;
    });
    const [user] = await this.database.db.select().from(users).where(eq(users.email, email));
    const ok = await verifyPassword(password, user?.passwordHash);
    if (!ok || !user) {
      signIns.inc({ outcome: "wrong_credentials" });
      throw new UnauthenticatedError(wrongCredentials);
    }
    await this.throttle.succeeded(attempt);
    // A hash made with older parameters is upgraded while the password is at hand.
    const upgraded = needsRehash(user.passwordHash) ? await hashPassword(password) : undefined;
    const refresh = await this.database.db.transaction(async (tx) => {
      if (upgraded) await tx.update(users).set({ passwordHash: upgraded }).where(eq(users.id, user.id));
      return this.newRefreshToken(tx, user.id, crypto.randomUUID());
    });
    signIns.inc({ outcome: "ok" });
    return { user: withoutHash(user), session: await this.session(user, refresh) };
  }

  /**
   * Exchanges a refresh token for new tokens (rotation): the token is marked used and a new
   * one of the same family issued. A used or revoked token revokes its whole family: whoever
   * holds the newest token of a stolen chain is signed out too. The row is locked, so of two
   * concurrent exchanges of one token exactly one succeeds; the other then finds the token used,
   * which is reuse (the server cannot tell a thief from a client racing itself), so the family
   * is revoked: clients must not refresh one token twice at once.
   */
  async refresh(token: string): Promise<Session> {
    if (!refreshTokenPattern.test(token)) throw new UnauthenticatedError("the refresh token is not valid; sign in again");
    const outcome = await this.database.db.transaction(async (tx) => {
      const [row] = await tx
        .select({ token: refreshTokens, roles: users.roles })
        .from(refreshTokens)
        .innerJoin(users, eq(users.id, refreshTokens.userId))
        .where(eq(refreshTokens.tokenHash, sha256(token)))
        .for("update", { of: refreshTokens });
      if (!row) return { kind: "unknown" } as const;
      const current = row.token;
      if (current.usedAt || current.revokedAt) {
        await this.revokeFamily(tx, current.familyId);
        return { kind: current.usedAt ? "reused" : "revoked", userId: current.userId, familyId: current.familyId } as const;
      }
      if (current.expiresAt.getTime() <= Date.now()) return { kind: "expired" } as const;
      const next = await this.newRefreshToken(tx, current.userId, current.familyId);
      await tx.update(refreshTokens).set({ usedAt: sql`now()`, replacedBy: next.id }).where(eq(refreshTokens.id, current.id));
      return { kind: "rotated", user: { id: current.userId, roles: row.roles }, next } as const;
    });
    switch (outcome.kind) {
      case "unknown":
        throw new UnauthenticatedError("the refresh token is not valid; sign in again");
      case "expired":
        throw new UnauthenticatedError("the refresh token has expired; sign in again");
      case "revoked":
        throw new UnauthenticatedError("the refresh token was revoked; sign in again");
      case "reused":
        refreshReuseDetected.inc();
        log.warn("refresh token reuse detected; revoked the family", { userId: outcome.userId, familyId: outcome.familyId });
        throw new UnauthenticatedError("refresh token reuse detected; sign in again");
      case "rotated":
        return this.session(outcome.user, outcome.next);
    }
  }

  private async revokeFamily(tx: Tx, familyId: string): Promise<void> {
    await tx
      .update(refreshTokens)
      .set({ revokedAt: sql`now()` })
      .where(and(eq(refreshTokens.familyId, familyId), isNull(refreshTokens.revokedAt)));
  }

  /** Ends the session of a refresh token: revokes its family. Unknown or revoked tokens are fine (idempotent). */
  async logout(token: string): Promise<void> {
    if (!refreshTokenPattern.test(token)) return;
    await this.database.db.transaction(async (tx) => {
      const [row] = await tx
        .select({ familyId: refreshTokens.familyId })
        .from(refreshTokens)
        .where(eq(refreshTokens.tokenHash, sha256(token)));
      if (row) await this.revokeFamily(tx, row.familyId);
    });
  }

  /** A user by id; NOT_FOUND if there is none. */
  async user(id: string): Promise<User> {
    const [row] = await this.database.db.select().from(users).where(eq(users.id, id));
    if (!row) throw new NotFoundError(`no user has id ${id}`);
    return withoutHash(row);
  }

  /** A user by (lower-cased) email, if any. */
  async userByEmail(email: string): Promise<User | undefined> {
    const [row] = await this.database.db.select().from(users).where(eq(users.email, email));
    return row ? withoutHash(row) : undefined;
  }
}
