import { describe, expect, test } from "bun:test";
import { type Versioned, VersionedCache } from "./versioned-cache.ts";

function cache(options: { live?: () => boolean; maxEntries?: number; maxAgeMs?: number } = {}) {
  return new VersionedCache<string>({
    name: "test",
    maxEntries: options.maxEntries ?? 100,
    maxAgeMs: options.maxAgeMs ?? 60_000,
    isLive: options.live ?? (() => true),
  });
}

/** A loader that counts its calls and answers what `source` holds now. */
function source(initial: Versioned<string>) {
  const s = {
    now: initial,
    loads: 0,
    load: async () => {
      s.loads++;
      return s.now;
    },
  };
  return s;
}

/** A load that answers only when told to. */
function gate<T>() {
  let open: (value: T) => void = () => {};
  const promise = new Promise<T>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

describe("VersionedCache", () => {
  test("a miss loads once and later reads are served from memory", async () => {
    const c = cache();
    const s = source({ value: "v1", version: 1n });
    expect(await c.get("a", s.load)).toBe("v1");
    expect(await c.get("a", s.load)).toBe("v1");
    expect(s.loads).toBe(1);
  });

  test("concurrent misses of one id share one load", async () => {
    const c = cache();
    const s = source({ value: "v1", version: 1n });
    expect(await Promise.all([c.get("a", s.load), c.get("a", s.load), c.get("a", s.load)])).toEqual(["v1", "v1", "v1"]);
    expect(s.loads).toBe(1);
  });

  test("a newer update replaces what is held, without a load", async () => {
    const c = cache();
    const s = source({ value: "v1", version: 1n });
    await c.get("a", s.load);
    c.offer("a", { value: "v2", version: 2n });
    expect(await c.get("a", s.load)).toBe("v2");
    expect(s.loads).toBe(1);
  });

  test("a late or duplicated update never puts older data over newer", async () => {
    const c = cache();
    const s = source({ value: "v3", version: 3n });
    await c.get("a", s.load);
    c.offer("a", { value: "v2", version: 2n });
    c.offer("a", { value: "v3 again", version: 3n });
    expect(await c.get("a", s.load)).toBe("v3");
  });

  test("an update that arrives while a load is in flight wins over an older load", async () => {
    const c = cache();
    const slow = gate<Versioned<string>>();
    const reading = c.get("a", () => slow.promise);
    c.offer("a", { value: "v2", version: 2n });
    // The load read the row before the change whose event came first.
    slow.open({ value: "v1", version: 1n });
    expect(await reading).toBe("v1");
    expect(await c.get("a", async () => ({ value: "loaded again", version: 0n }))).toBe("v2");
  });

  test("an update of an id it does not hold is not kept, so a late one cannot come back as current", async () => {
    const c = cache();
    c.offer("a", { value: "v1", version: 1n });
    expect(c.size).toBe(0);
  });

  test("clear drops every entry, and a load started before it is answered but not kept", async () => {
    const c = cache();
    const s = source({ value: "v1", version: 1n });
    await c.get("a", s.load);
    const slow = gate<Versioned<string>>();
    const reading = c.get("b", () => slow.promise);
    c.clear();
    slow.open({ value: "b1", version: 1n });
    expect(await reading).toBe("b1");
    expect(c.size).toBe(0);
    s.now = { value: "v2", version: 2n };
    expect(await c.get("a", s.load)).toBe("v2");
  });

  test("forget drops one id, and its load in flight is not kept", async () => {
    const c = cache();
    const slow = gate<Versioned<string>>();
    const reading = c.get("a", () => slow.promise);
    c.forget("a");
    slow.open({ value: "v1", version: 1n });
    await reading;
    expect(c.size).toBe(0);
  });

  test("while not live every read goes to the source and nothing is kept", async () => {
    let live = false;
    const c = cache({ live: () => live });
    const s = source({ value: "v1", version: 1n });
    await c.get("a", s.load);
    await c.get("a", s.load);
    expect(s.loads).toBe(2);
    expect(c.size).toBe(0);
    live = true;
    await c.get("a", s.load);
    expect(c.size).toBe(1);
  });

  test("an entry no event confirmed for maxAgeMs is loaded again", async () => {
    const c = cache({ maxAgeMs: 0 });
    const s = source({ value: "v1", version: 1n });
    await c.get("a", s.load);
    s.now = { value: "v2", version: 2n };
    expect(await c.get("a", s.load)).toBe("v2");
    expect(s.loads).toBe(2);
  });

  test("it holds at most maxEntries, dropping the least recently read", async () => {
    const c = cache({ maxEntries: 2 });
    const loaded: string[] = [];
    const load = (id: string) => async () => {
      loaded.push(id);
      return { value: id, version: 1n };
    };
    await c.get("a", load("a"));
    await c.get("b", load("b"));
    await c.get("a", load("a")); // read again: b is now the least recently read
    await c.get("c", load("c"));
    expect(c.size).toBe(2);
    await c.get("a", load("a"));
    await c.get("b", load("b"));
    expect(loaded).toEqual(["a", "b", "c", "b"]);
  });
});
