import type { PgDatabase, PgQueryResultHKT } from "drizzle-orm/pg-core";
import { inbox } from "./tables.ts";

type Db = PgDatabase<PgQueryResultHKT, Record<string, unknown>>;

/**
 * Runs a consumer's effect at most once per message: the inbox row (consumer, message id) and
 * the effect commit in one transaction, so a redelivered or duplicated message finds the row
 * and does nothing ("duplicate"), and an effect that fails leaves no row behind for the retry.
 */
export async function handleOnce<T extends Db>(
  db: T,
  consumer: string,
  messageId: string,
  effect: (tx: Parameters<Parameters<T["transaction"]>[0]>[0]) => Promise<void>,
  // biome-ignore lint/suspicious/noConfusingVoidType: the effect ran (nothing to report) or the message was a duplicate.
): Promise<void | "duplicate"> {
  return db.transaction(async (tx) => {
    const inserted = await tx.insert(inbox).values({ consumer, messageId }).onConflictDoNothing().returning({ id: inbox.messageId });
    if (inserted.length === 0) return "duplicate";
    await effect(tx as never);
  });
}
