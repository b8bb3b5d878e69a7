import { sql } from "drizzle-orm";
import { log } from "@bazaar/platform/log";
import { PeriodicTask } from "@bazaar/platform/periodic-task";
import { refreshTokensPurged } from "./metrics.ts";
import type { IdentityDatabase } from "./signing-keys.ts";

/** How {@link RefreshTokenPurge} purges. */
export interface PurgeOptions {
  /** How long after the last token of a family expired its rows are kept, in seconds. */
  graceSeconds: number;
  /** Rows deleted per statement, so no statement holds many locks for long. */
  batchSize?: number;
}

/**
 * Deletes the refresh tokens of families that are over: every token of the family expired more
 * than the grace ago. With its last token a family is gone too: it is no row of its own, only a
 * shared family_id. Resolves with how many tokens it deleted.
 *
 * A family goes whole, never thinned out, because reuse detection needs its old tokens: a used
 * token presented again revokes the family, and that protects anyone only while the family
 * still holds a live token (a thief's or the owner's newest). Deleting an expired, used token
 * whose successor lives would turn its reuse into an "unknown token" and leave a stolen chain
 * running. Once the newest token of a family has expired nothing in it can be refreshed, so
 * the grace only has to cover Refresh deciding expiry by its replica's clock while the purge
 * uses the database's: a token a replica still rotates (clock skew, a request in flight at the
 * expiry) is not purged under it, and a just-expired token keeps its accurate answer
 * ("expired", "reuse detected") rather than "not valid".
 *
 * Replicas may purge at once: each statement locks its batch with SKIP LOCKED, so they delete
 * disjoint rows and wait neither for one another nor for a Refresh holding a token's row.
 */
export async function purgeExpiredRefreshTokens(database: IdentityDatabase, options: PurgeOptions): Promise<number> {
  const batchSize = options.batchSize ?? 1000;
  let total = 0;
  for (;;) {
    const deleted = await purgeBatch(database, options.graceSeconds, batchSize);
    total += deleted;
    if (deleted < batchSize) return total;
  }
}

/** Deletes up to `batchSize` tokens of families that are over; resolves with how many. */
async function purgeBatch(database: IdentityDatabase, graceSeconds: number, batchSize: number): Promise<number> {
  // The scan walks refresh_tokens_expires_at_idx, the family check refresh_tokens_family_idx.
  // A family deleted over several batches is, in between, a set of expired tokens: harmless.
  const deleted = await database.db.execute(sql`
    with cutoff as (select now() - make_interval(secs => ${graceSeconds}) as at),
    doomed as (
      select t.id from refresh_tokens t, cutoff
      where t.expires_at < cutoff.at
        and not exists (
          select 1 from refresh_tokens live
          where live.family_id = t.family_id and live.expires_at >= cutoff.at
        )
      limit ${batchSize}
      for update of t skip locked
    )
    delete from refresh_tokens r using doomed where r.id = doomed.id returning r.id
  `);
  return deleted.length;
}

/**
 * Runs {@link purgeExpiredRefreshTokens} at start and then every `intervalMs`; logs and counts
 * what it removed. A failed purge is logged and left to the next.
 */
export class RefreshTokenPurge {
  private readonly task: PeriodicTask;

  constructor(
    private readonly database: IdentityDatabase,
    intervalMs: number,
    private readonly options: PurgeOptions,
  ) {
    this.task = new PeriodicTask("refresh token purge", intervalMs, () => this.purgeAndCount());
  }

  /** Purges now (tokens may have expired while the service was down) and then every interval. */
  start(): this {
    this.task.start();
    return this;
  }

  /** Purges now (joining a purge already running); resolves with how many tokens it deleted. */
  purge(): Promise<number> {
    return this.task.runNow();
  }

  private async purgeAndCount(): Promise<number> {
    const tokens = await purgeExpiredRefreshTokens(this.database, this.options);
    refreshTokensPurged.inc(tokens);
    if (tokens) log.info("purged the refresh tokens of expired families", { tokens });
    return tokens;
  }

  /** Stops purging and waits for a purge in progress. */
  stop(): Promise<void> {
    return this.task.stop();
  }
}
