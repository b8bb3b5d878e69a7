import { cacheRequests } from "@bazaar/platform/metrics";

/** Options of {@link VersionedCache}. */
export interface VersionedCacheOptions {
  /** Its name in `bazaar_cache_requests_total{cache}`. */
  name: string;
  /** Entries kept at most; the least recently read goes first. */
  maxEntries: number;
  /**
   * How long an entry is served without being confirmed by an event or a load. Events keep
   * entries current; this bounds how stale one can get should events be lost unnoticed (a
   * connection dead but not yet known to be, a fan-out queue that overflowed).
   */
  maxAgeMs: number;
  /** Whether updates are arriving (the broker is connected); while not, reads go to the source and nothing is kept. */
  isLive: () => boolean;
}

/** A value and its version, as a load or an event reports it. */
export interface Versioned<T> {
  value: T;
  /** Grows with every change of the value at its source; of two, the higher is the newer. */
  version: bigint;
}

interface Entry<T> extends Versioned<T> {
  /** When a load or an event last confirmed it (ms). */
  confirmedAt: number;
}

/** A load in flight and the newest update that arrived while it was. */
interface Loading<T> {
  promise: Promise<Versioned<T>>;
  newest: Versioned<T> | undefined;
}

/**
 * A bounded, per-process read model of values that change at their source and announce each
 * change with a version (the BFF's products and stock levels, fed by ProductUpdated and
 * StockChanged). A miss loads the value once (concurrent misses of one id share the load) and
 * keeps it; an update replaces an entry only with a higher version, so a duplicate or a late
 * event never puts older data over newer, and neither does a load that read before a change
 * whose event came first.
 *
 * Updates only refresh entries it holds (or loads in flight): an update of a value nobody
 * reads costs nothing, and one that arrives late for an entry evicted meanwhile cannot come
 * back as if current. {@link clear} forgets everything, for when updates may have been missed
 * (the broker connection was lost); loads started before it are answered but not kept.
 */
export class VersionedCache<T> {
  private readonly entries = new Map<string, Entry<T>>();
  /** Loads in flight. One removed from here (by clear or forget) may have read too early: its answer is not kept. */
  private readonly loading = new Map<string, Loading<T>>();

  constructor(private readonly options: VersionedCacheOptions) {}

  /** The value of `id`: kept, or loaded by `load` (and kept, while updates are arriving). */
  async get(id: string, load: (id: string) => Promise<Versioned<T>>): Promise<T> {
    const live = this.options.isLive();
    if (!live) {
      cacheRequests.inc({ cache: this.options.name, result: "bypassed" });
      return (await load(id)).value;
    }
    const entry = this.entries.get(id);
    if (entry && Date.now() - entry.confirmedAt < this.options.maxAgeMs) {
      // Map order is insertion order: re-inserting makes it the most recently read.
      this.entries.delete(id);
      this.entries.set(id, entry);
      cacheRequests.inc({ cache: this.options.name, result: "hit" });
      return entry.value;
    }
    cacheRequests.inc({ cache: this.options.name, result: "miss" });
    let loading = this.loading.get(id);
    if (!loading) loading = this.startLoad(id, load);
    return (await loading.promise).value;
  }

  /** An update from the source: kept if it is newer than what is held for `id`. */
  offer(id: string, update: Versioned<T>): void {
    const loading = this.loading.get(id);
    if (loading && (!loading.newest || update.version > loading.newest.version)) loading.newest = update;
    const entry = this.entries.get(id);
    if (!entry) return;
    if (update.version > entry.version) this.entries.set(id, { ...update, confirmedAt: Date.now() });
    // The same version again (a duplicate) confirms what is held; an older one says nothing.
    else if (update.version === entry.version) entry.confirmedAt = Date.now();
  }

  /** Forgets `id` (an update without a version says only that it changed); a load in flight is answered but not kept. */
  forget(id: string): void {
    this.entries.delete(id);
    this.loading.delete(id);
  }

  /** Forgets every entry; loads in flight are answered but not kept. */
  clear(): void {
    this.entries.clear();
    this.loading.clear();
  }

  /** Entries held (for tests and metrics). */
  get size(): number {
    return this.entries.size;
  }

  private startLoad(id: string, load: (id: string) => Promise<Versioned<T>>): Loading<T> {
    const loading: Loading<T> = { promise: load(id), newest: undefined };
    this.loading.set(id, loading);
    loading.promise.then(
      (loaded) => {
        const current = this.loading.get(id) === loading;
        if (current) this.loading.delete(id);
        if (!current || !this.options.isLive()) return;
        // An update that arrived during the load may be newer than what the load read.
        const newest = loading.newest && loading.newest.version > loaded.version ? loading.newest : loaded;
        const held = this.entries.get(id);
        if (held && held.version > newest.version) return;
        this.entries.delete(id);
        this.entries.set(id, { ...newest, confirmedAt: Date.now() });
        this.evict();
      },
      () => {
        // Not kept: the next read asks again (and the caller got the error).
        if (this.loading.get(id) === loading) this.loading.delete(id);
      },
    );
    return loading;
  }

  private evict(): void {
    for (const id of this.entries.keys()) {
      if (this.entries.size <= this.options.maxEntries) return;
      this.entries.delete(id);
    }
  }
}
