// biome-ignore-all lint/suspicious/noExplicitAny: the agreement test walks the parsed envoy.yaml, an untyped document.
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { parse } from "yaml";
import { z } from "zod";
import { jwksCacheOptions, jwtSettings } from "@bazaar/platform/auth";
import { authEnv } from "@bazaar/platform/env";
import { repositoryRoot } from "@bazaar/platform/service-catalog";
import { identityEnv } from "./env.ts";
import { type KeyTimes, minimumLeadSeconds, planKeyMaintenance, type RotationSettings, retentionSeconds } from "./signing-keys.ts";

const s = 1000;
const t0 = new Date("2030-01-01T00:00:00Z").getTime();
const at = (seconds: number) => new Date(t0 + seconds * s);
const settings: RotationSettings = { rotationSeconds: 100, leadSeconds: 20, longestTokenTtlSeconds: 30 };
const retain = retentionSeconds(settings);

function key(kid: string, signsFrom: number, signsUntil?: number, publishedUntil?: number): KeyTimes {
  return {
    kid,
    signsFrom: at(signsFrom),
    signsUntil: signsUntil === undefined ? null : at(signsUntil),
    publishedUntil: publishedUntil === undefined ? null : at(publishedUntil),
  };
}

/** The keys after a plan is carried out, as maintainSigningKeys does it in the database. */
function apply(keys: KeyTimes[], now: Date, rotateNow = false): { keys: (KeyTimes & { publishedFrom: Date })[]; created?: string } {
  const plan = planKeyMaintenance(keys, now, settings, rotateNow);
  let next = keys.filter((k) => !plan.remove.includes(k.kid)).map((k) => ({ ...k, publishedFrom: (k as { publishedFrom?: Date }).publishedFrom ?? now }));
  next = next.map((k) => {
    const r = plan.retire.find((x) => x.kid === k.kid);
    return r ? { ...k, signsUntil: r.signsUntil, publishedUntil: r.publishedUntil } : k;
  });
  if (!plan.create) return { keys: next };
  const kid = `k${now.getTime()}`;
  return { keys: [...next, { kid, signsFrom: plan.create, signsUntil: null, publishedUntil: null, publishedFrom: now }], created: kid };
}

describe("key lifecycle plan", () => {
  test("an empty database gets a first key that signs at once", () => {
    expect(planKeyMaintenance([], at(0), settings)).toEqual({ remove: [], create: at(0), retire: [] });
  });

  test("nothing is due while the newest key has signed for less than the rotation minus the lead", () => {
    expect(planKeyMaintenance([key("a", 0)], at(79), settings)).toEqual({ remove: [], create: undefined, retire: [] });
  });

  test("a successor is made a lead before the rotation is up, and the current key retires when it starts", () => {
    expect(planKeyMaintenance([key("a", 0)], at(80), settings)).toEqual({
      remove: [],
      create: at(100),
      retire: [{ kid: "a", signsUntil: at(100), publishedUntil: at(100 + retain) }],
    });
    // Once made, nothing more is due: replicas planning after the first find it done.
    expect(planKeyMaintenance([key("a", 0, 100, 100 + retain), key("b", 100)], at(81), settings)).toEqual({ remove: [], create: undefined, retire: [] });
  });

  test("a successor made late (identity was down) still gets its full lead before it signs", () => {
    expect(planKeyMaintenance([key("a", 0)], at(500), settings).create).toEqual(at(520));
  });

  test("a retired key leaves the JWKS when its retention is over, not a moment before", () => {
    const keys = [key("a", 0, 100, 100 + retain), key("b", 100)];
    expect(planKeyMaintenance(keys, at(100 + retain - 0.001), settings).remove).toEqual([]);
    expect(planKeyMaintenance(keys, at(100 + retain), settings).remove).toEqual(["a"]);
  });

  test("a longer token lifetime since a key retired keeps it published longer; a shorter one never shortens its time", () => {
    const keys = [key("a", 0, 100, 100 + retain), key("b", 100)];
    const longer = planKeyMaintenance(keys, at(110), { ...settings, longestTokenTtlSeconds: 300 });
    expect(longer.retire).toEqual([{ kid: "a", signsUntil: at(100), publishedUntil: at(100 + retentionSeconds({ longestTokenTtlSeconds: 300 })) }]);
    expect(planKeyMaintenance(keys, at(110), { ...settings, longestTokenTtlSeconds: 1 }).retire).toEqual([]);
  });

  test("keys from before the lifecycle (several signing, none retired): all but the newest retire when the next one started", () => {
    const plan = planKeyMaintenance([key("old", 0), key("new", 50)], at(60), settings);
    expect(plan.retire).toEqual([{ kid: "old", signsUntil: at(50), publishedUntil: at(50 + retain) }]);
  });

  test("rotating now replaces a pending successor with one signing a lead from now", () => {
    const keys = [key("a", 0, 100, 100 + retain), key("b", 100)];
    expect(planKeyMaintenance(keys, at(85), settings, true)).toEqual({
      remove: ["b"],
      create: at(105),
      retire: [{ kid: "a", signsUntil: at(105), publishedUntil: at(105 + retain) }],
    });
  });

  test("over many rotations, each key is published a lead before it signs and until its retention after it stopped, and one key signs at a time", () => {
    let keys: (KeyTimes & { publishedFrom: Date })[] = [];
    const history = new Map<string, KeyTimes & { publishedFrom: Date; removedAt?: Date }>();
    let rotatedByHand = false;
    for (let now = 0; now <= 1000; now += 3) {
      const before = new Set(keys.map((k) => k.kid));
      // The operator rotates once, past the middle, while a successor is pending.
      const byHand: boolean = !rotatedByHand && now >= 500 && keys.some((k) => k.signsFrom > at(now));
      rotatedByHand ||= byHand;
      const { keys: next } = apply(keys, at(now), byHand);
      for (const k of next) history.set(k.kid, { ...history.get(k.kid), ...k });
      for (const kid of before) if (!next.some((k) => k.kid === kid)) history.set(kid, { ...history.get(kid)!, removedAt: at(now) });
      keys = next;
      const signing = keys.filter((k) => k.signsFrom <= at(now) && (!k.signsUntil || k.signsUntil > at(now)));
      expect(signing).toHaveLength(1);
    }
    // A pending successor the operator's rotation replaced never signed: it is in no chain.
    const replaced = [...history.values()].filter((k) => k.removedAt && k.removedAt <= k.signsFrom);
    expect(replaced).toHaveLength(1);
    const all = [...history.values()].filter((k) => !replaced.includes(k)).sort((a, b) => a.signsFrom.getTime() - b.signsFrom.getTime());
    expect(all.length).toBeGreaterThanOrEqual(10);
    for (const [i, k] of all.entries()) {
      if (i > 0) expect(k.signsFrom.getTime() - k.publishedFrom.getTime()).toBeGreaterThanOrEqual(settings.leadSeconds * s);
      const successor = all[i + 1];
      if (!successor) continue;
      expect(k.signsUntil).toEqual(successor.signsFrom);
      if (k.removedAt) expect(k.removedAt.getTime()).toBeGreaterThanOrEqual(k.signsUntil!.getTime() + retain * s);
    }
  });
});

describe("the lead and every verifier's cache of the JWKS", () => {
  const defaults = identityEnv.parse({});
  const envoy = parse(readFileSync(`${repositoryRoot}/gateway/envoy.yaml`, "utf8"), { merge: true }) as any;
  const envoyJwt = envoy.static_resources.listeners
    .flatMap((l: any) => l.filter_chains[0].filters)
    .find((f: any) => f.name === "envoy.filters.network.http_connection_manager")
    .typed_config.http_filters.find((f: any) => f.name === "envoy.filters.http.jwt_authn").typed_config;

  test("Envoy, the platform verifier and the JWKS max-age keep the key set no longer than the lead allows for", () => {
    const envoySeconds = Number(/^(\d+)s$/.exec(envoyJwt.providers.bazaar.remote_jwks.cache_duration)?.[1]);
    const verifier = jwksCacheOptions(z.object(authEnv).parse({}).JWKS_CACHE_SECONDS);
    const longestCache = Math.max(envoySeconds, verifier.cacheMaxAge / s, defaults.JWKS_CACHE_SECONDS);
    // They agree on one figure, the one identity assumes and sends as max-age.
    expect([envoySeconds, verifier.cacheMaxAge / s]).toEqual([defaults.JWKS_CACHE_SECONDS, defaults.JWKS_CACHE_SECONDS]);
    expect(verifier.cooldownDuration).toBeLessThanOrEqual(verifier.cacheMaxAge);
    expect(defaults.SIGNING_KEY_LEAD_SECONDS).toBeGreaterThanOrEqual(longestCache + defaults.SIGNING_KEY_RELOAD_MS / s + jwtSettings.clockToleranceSeconds);
    expect(minimumLeadSeconds(defaults.JWKS_CACHE_SECONDS, defaults.SIGNING_KEY_RELOAD_MS)).toBeLessThanOrEqual(defaults.SIGNING_KEY_LEAD_SECONDS);
    expect(defaults.SIGNING_KEY_ROTATION_SECONDS).toBe(30 * 86_400);
  });

  test("a lead shorter than a verifier may cache the JWKS is refused at start, naming the variable and the minimum", () => {
    const result = identityEnv.safeParse({ JWKS_CACHE_SECONDS: "300", SIGNING_KEY_RELOAD_MS: "10000", SIGNING_KEY_LEAD_SECONDS: "60" });
    expect(result.success).toBe(false);
    expect(result.error?.issues).toContainEqual(
      expect.objectContaining({ path: ["SIGNING_KEY_LEAD_SECONDS"], message: expect.stringContaining("at least 315") }),
    );
    const short = identityEnv.safeParse({
      JWKS_CACHE_SECONDS: "1",
      SIGNING_KEY_RELOAD_MS: "500",
      SIGNING_KEY_LEAD_SECONDS: "7",
      SIGNING_KEY_ROTATION_SECONDS: "5",
    });
    expect(short.error?.issues).toContainEqual(expect.objectContaining({ path: ["SIGNING_KEY_ROTATION_SECONDS"] }));
  });
});
