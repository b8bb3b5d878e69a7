import { eq } from "drizzle-orm";
import type { Database } from "@bazaar/platform/db";
import { log } from "@bazaar/platform/log";
import { field, required, validate, violation } from "@bazaar/platform/validation";
import type { FaultSettings } from "@bazaar/proto/bazaar/payments/v1/payments_pb";
import { faultSettings } from "./db/schema.ts";
import type * as schema from "./db/schema.ts";
import type { Faults } from "./processor.ts";

/** The settings when nobody has set any: a well-behaved processor. */
export const noFaults: Faults = { failureRate: 0, addedLatencyMs: 0 };

/** The largest latency an admin may add, in milliseconds. */
export const maxAddedLatencyMs = 10_000;

/** Checks fault settings from a request, naming every field at fault. */
export function validateFaultSettings(settings: FaultSettings | undefined): Faults {
  return validate({
    faults: field(
      "settings",
      settings,
      required(({ failureRate, addedLatencyMs }) =>
        validate({
          // Written so that NaN fails too.
          failureRate: field("failure_rate", failureRate, (rate) => (rate >= 0 && rate <= 1 ? rate : violation(`must be between 0 and 1, got ${rate}`))),
          addedLatencyMs: field("added_latency_ms", addedLatencyMs, (ms) =>
            ms >= 0 && ms <= maxAddedLatencyMs ? ms : violation(`must be between 0 and ${maxAddedLatencyMs} milliseconds, got ${ms}`),
          ),
        }),
      ),
    ),
  }).faults;
}

/** Options of {@link FaultSettingsStore}. */
export interface FaultSettingsStoreOptions {
  /** How long a read value is reused, in milliseconds; at most 1000, so a change reaches every replica within a second. */
  cacheMs?: number;
}

/**
 * The fault settings, kept in the database so every replica shares them and a change needs no
 * restart. Each replica reuses what it read for a moment (≤ 1 s) rather than reading the row on
 * every charge; the replica that takes a change sees it at once, the others on their next read.
 */
export class FaultSettingsStore {
  private readonly cacheMs: number;
  private cached: { value: Faults; until: number } | undefined;
  private loading: Promise<Faults> | undefined;
  // Bumped by set(), so a read that started before a change cannot cache the old value after it.
  private generation = 0;

  constructor(
    private readonly database: Database<typeof schema>,
    options: FaultSettingsStoreOptions = {},
  ) {
    this.cacheMs = Math.min(options.cacheMs ?? 500, 1000);
  }

  /** The settings in force, from the short cache or the database (one read at a time). */
  async current(): Promise<Faults> {
    if (this.cached && Date.now() < this.cached.until) return this.cached.value;
    if (!this.loading) {
      const generation = this.generation;
      const loading: Promise<Faults> = this.read()
        .then((value) => {
          if (generation === this.generation) this.cached = { value, until: Date.now() + this.cacheMs };
          return value;
        })
        .finally(() => {
          if (this.loading === loading) this.loading = undefined;
        });
      this.loading = loading;
    }
    return this.loading;
  }

  /** The settings as stored, bypassing the cache. */
  async read(): Promise<Faults> {
    const [row] = await this.database.db
      .select({ failureRate: faultSettings.failureRate, addedLatencyMs: faultSettings.addedLatencyMs })
      .from(faultSettings)
      .where(eq(faultSettings.id, 1));
    return row ?? noFaults;
  }

  /** Stores new settings (validated by the caller) and uses them here at once. */
  async set(value: Faults, updatedBy: string): Promise<Faults> {
    const row = { failureRate: value.failureRate, addedLatencyMs: value.addedLatencyMs, updatedAt: new Date(), updatedBy };
    await this.database.db
      .insert(faultSettings)
      .values({ id: 1, ...row })
      .onConflictDoUpdate({ target: faultSettings.id, set: row });
    this.generation++;
    this.loading = undefined;
    this.cached = { value, until: Date.now() + this.cacheMs };
    log.info("payment processor fault settings changed", { ...value, updatedBy });
    return value;
  }
}
