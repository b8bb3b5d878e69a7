import { eq, inArray, sql } from "drizzle-orm";
import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, type JSONWebKeySet, type JWK } from "jose";
import { jwtSettings } from "@bazaar/platform/auth";
import type { Database } from "@bazaar/platform/db";
import { log } from "@bazaar/platform/log";
import { PeriodicTask } from "@bazaar/platform/periodic-task";
import type * as schema from "./db/schema.ts";
import { type SigningKeyRow, signingKeys } from "./db/schema.ts";

/** The identity service's database. */
export type IdentityDatabase = Database<typeof schema>;

/** The key tokens are signed with. */
export interface SigningKey {
  kid: string;
  privateKey: CryptoKey;
}

/** What hands out the key to sign with now (see {@link SigningKeys}). */
export interface SigningKeySource {
  /** The key to sign with at `at` (milliseconds since the epoch; now if not given). */
  signingKey(at?: number): SigningKey;
}

/** How signing keys rotate (SIGNING_KEY_* in env.ts). */
export interface RotationSettings {
  /** How long each key signs before its successor takes over, in seconds. */
  rotationSeconds: number;
  /** How long a key is published before it signs, in seconds: at least {@link minimumLeadSeconds}. */
  leadSeconds: number;
  /** The longest lifetime of any token identity signs (access and service tokens), in seconds. */
  longestTokenTtlSeconds: number;
}

/** {@link RotationSettings} and how often each replica reloads the keys and does what is due. */
export interface SigningKeySettings extends RotationSettings {
  reloadMs: number;
}

/**
 * How far clocks may disagree, in seconds: verifiers accept a token this long after its `exp`
 * (jwtSettings), and the machine that removes a key may run as far ahead of a verifier.
 */
const clockSkewAllowanceSeconds = 2 * jwtSettings.clockToleranceSeconds;

/**
 * The shortest lead that is safe: a new key must be in every verifier's copy of the JWKS before
 * the first token signed with it arrives. A replica sees the new row within one reload; a
 * verifier's copy is at most `jwksCacheSeconds` old (the JWKS max-age, the platform verifier's
 * cache, Envoy's cache_duration); and a replica whose clock runs ahead starts signing early.
 */
export function minimumLeadSeconds(jwksCacheSeconds: number, reloadMs: number): number {
  return jwksCacheSeconds + Math.ceil(reloadMs / 1000) + jwtSettings.clockToleranceSeconds;
}

/**
 * How long a key stays published after it stopped signing: the last token it signed expires
 * at most the longest token lifetime later (a replica takes `exp` from the clock it picked the
 * key by), plus the clock-skew allowance.
 */
export function retentionSeconds(settings: Pick<RotationSettings, "longestTokenTtlSeconds">): number {
  return settings.longestTokenTtlSeconds + clockSkewAllowanceSeconds;
}

/** The lifecycle times of a key, as {@link planKeyMaintenance} reads them. */
export type KeyTimes = Pick<SigningKeyRow, "kid" | "signsFrom" | "signsUntil" | "publishedUntil">;

/** What the database needs for the key lifecycle to be as it should at one moment. */
export interface KeyMaintenance {
  /** Keys to delete: out of the JWKS (their last token expired), or pending ones a rotation replaces. */
  remove: string[];
  /** A successor to make, signing from this moment. */
  create: Date | undefined;
  /** New signs_until / published_until of keys that have (or got) a successor. */
  retire: { kid: string; signsUntil: Date; publishedUntil: Date }[];
}

const seconds = (s: number) => s * 1000;
const later = (a: Date, b: Date) => (a.getTime() >= b.getTime() ? a : b);

/**
 * The changes that bring the keys up to date at `now` (the database's clock): a key whose
 * time in the JWKS is over goes; a successor is made once the newest key has signed for the
 * rotation less the lead, to sign a lead later (or when the rotation is up, if that is later);
 * and every key but the newest signs until the next one starts and stays published the
 * retention past that. An empty database gets its first key, signing at once: nobody holds a
 * token or a key set it could be missing from.
 *
 * `rotateNow` (the operator's command) makes the successor now, to sign a lead from now, and
 * drops any pending successor (published, but it has signed nothing).
 */
export function planKeyMaintenance(keys: readonly KeyTimes[], now: Date, settings: RotationSettings, rotateNow = false): KeyMaintenance {
  const expired = (k: KeyTimes) => k.publishedUntil !== null && k.publishedUntil.getTime() <= now.getTime();
  const pending = (k: KeyTimes) => k.signsFrom.getTime() > now.getTime();
  const remove = keys.filter((k) => expired(k) || (rotateNow && pending(k))).map((k) => k.kid);
  const kept = keys.filter((k) => !remove.includes(k.kid)).sort((a, b) => a.signsFrom.getTime() - b.signsFrom.getTime() || a.kid.localeCompare(b.kid));
  const newest = kept.at(-1);
  let create: Date | undefined;
  if (!newest) create = now;
  else if (rotateNow) create = new Date(now.getTime() + seconds(settings.leadSeconds));
  else if (now.getTime() >= newest.signsFrom.getTime() + seconds(settings.rotationSeconds - settings.leadSeconds)) {
    create = later(new Date(now.getTime() + seconds(settings.leadSeconds)), new Date(newest.signsFrom.getTime() + seconds(settings.rotationSeconds)));
  }
  const starts = [...kept.map((k) => k.signsFrom), ...(create && newest ? [create] : [])];
  const retire: KeyMaintenance["retire"] = [];
  kept.forEach((key, i) => {
    const next = starts[i + 1];
    if (!next) return;
    // A retention that grew (a longer token lifetime since) extends the time in the JWKS; it never shortens it.
    const publishedUntil = later(new Date(next.getTime() + seconds(retentionSeconds(settings))), key.publishedUntil ?? new Date(0));
    if (key.signsUntil?.getTime() !== next.getTime() || key.publishedUntil?.getTime() !== publishedUntil.getTime()) {
      retire.push({ kid: key.kid, signsUntil: next, publishedUntil });
    }
  });
  return { remove, create, retire };
}

const isEmpty = (m: KeyMaintenance) => m.remove.length === 0 && !m.create && m.retire.length === 0;

const lockKey = "bazaar:identity:signing-key";

/** The database's clock, read after any lock wait. */
async function databaseNow(db: IdentityDatabase["db"]): Promise<Date> {
  const [row] = await db.execute<{ ms: number }>(sql`select (extract(epoch from clock_timestamp()) * 1000)::float8 as ms`);
  return new Date(Number(row?.ms));
}

/** The public JWK as published: key material plus kid, alg and use, nothing else. */
function publicJwk(jwk: JWK, kid: string): JWK {
  return { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y, kid, alg: jwtSettings.algorithm, use: "sig" };
}

async function newKey(signsFrom: Date, createdAt: Date) {
  const { privateKey, publicKey } = await generateKeyPair(jwtSettings.algorithm, { extractable: true });
  const pub = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(pub);
  return { kid, privateJwk: { ...(await exportJWK(privateKey)), kid, alg: jwtSettings.algorithm }, publicJwk: publicJwk(pub, kid), createdAt, signsFrom };
}

/**
 * Brings the key lifecycle up to date (see {@link planKeyMaintenance}) and returns every key.
 * Replicas all do this on every reload, so what needs doing is decided again under an advisory
 * lock, in one transaction: of replicas finding a successor due at once, the first makes it
 * and the others find it made. The common case, nothing due, takes no lock.
 *
 * The private key sits in the service's own database as a JWK. A deployment that needs more
 * would keep it in a KMS or encrypt the column with a key from one.
 */
export async function maintainSigningKeys(
  database: IdentityDatabase,
  settings: RotationSettings,
  options: { rotateNow?: boolean; revoke?: boolean } = {},
): Promise<{ keys: SigningKeyRow[]; changed: number }> {
  const forced = options.rotateNow || options.revoke;
  if (!forced) {
    const keys = await database.db.select().from(signingKeys);
    if (isEmpty(planKeyMaintenance(keys, await databaseNow(database.db), settings))) return { keys, changed: 0 };
  }
  return database.db.transaction(async (tx) => {
    await tx.execute(sql`select pg_advisory_xact_lock(hashtext(${lockKey}))`);
    const now = await databaseNow(tx);
    const keys = await tx.select().from(signingKeys);
    // Revoking: every key goes, and a new one signs at once (see rotate-signing-key.ts).
    const plan: KeyMaintenance = options.revoke
      ? { remove: keys.map((k) => k.kid), create: now, retire: [] }
      : planKeyMaintenance(keys, now, settings, options.rotateNow);
    if (plan.remove.length > 0) await tx.delete(signingKeys).where(inArray(signingKeys.kid, plan.remove));
    for (const r of plan.retire) {
      await tx.update(signingKeys).set({ signsUntil: r.signsUntil, publishedUntil: r.publishedUntil }).where(eq(signingKeys.kid, r.kid));
    }
    const created = plan.create ? await newKey(plan.create, now) : undefined;
    if (created) await tx.insert(signingKeys).values(created);
    for (const kid of plan.remove) {
      if (options.revoke) log.warn("revoked signing key: tokens it signed are refused", { kid });
      else log.info("removed signing key from the JWKS", { kid });
    }
    for (const r of plan.retire) log.info("signing key retires", { kid: r.kid, signsUntil: r.signsUntil, publishedUntil: r.publishedUntil });
    if (created) log.info("published signing key", { kid: created.kid, signsFrom: created.signsFrom });
    const after = await tx.select().from(signingKeys);
    return { keys: after, changed: plan.remove.length + plan.retire.length + (created ? 1 : 0) };
  });
}

interface LoadedKey {
  key: SigningKey;
  publicJwk: JWK;
  signsFrom: number;
  publishedUntil: number | undefined;
}

/**
 * The keys identity signs with and publishes, kept current: every replica reloads them (and
 * does what is due: a successor, a removal) every `reloadMs`, and picks the signing key by the
 * times in the rows, so replicas switch keys at the same moment however their reloads fall.
 * A reload that fails keeps the keys it had: successors are made a lead ahead, so rotation
 * carries on through a database outage shorter than the lead.
 */
export class SigningKeys implements SigningKeySource {
  private loaded: LoadedKey[] = [];
  private readonly imported = new Map<string, CryptoKey>();
  private published: { kids: string; jwks: JSONWebKeySet } = { kids: "", jwks: { keys: [] } };
  private signingKid: string | undefined;
  private readonly task: PeriodicTask;

  private constructor(
    private readonly database: IdentityDatabase,
    private readonly settings: SigningKeySettings,
  ) {
    this.task = new PeriodicTask("signing key reload", settings.reloadMs, () => this.reload());
  }

  /** Loads the keys, making the first one if there is none; fails if the database cannot be read. */
  static async open(database: IdentityDatabase, settings: SigningKeySettings): Promise<SigningKeys> {
    const keys = new SigningKeys(database, settings);
    await keys.reload();
    return keys;
  }

  /** Reloads every `reloadMs` until {@link stop}. */
  start(): this {
    this.task.start();
    return this;
  }

  /** Stops reloading and waits for a reload in progress. */
  stop(): Promise<void> {
    return this.task.stop();
  }

  private async reload(): Promise<number> {
    const { keys, changed } = await maintainSigningKeys(this.database, this.settings);
    const loaded: LoadedKey[] = [];
    for (const row of keys) {
      loaded.push({
        key: { kid: row.kid, privateKey: await this.privateKey(row) },
        publicJwk: publicJwk(row.publicJwk, row.kid),
        signsFrom: row.signsFrom.getTime(),
        publishedUntil: row.publishedUntil?.getTime(),
      });
    }
    for (const kid of this.imported.keys()) if (!keys.some((k) => k.kid === kid)) this.imported.delete(kid);
    this.loaded = loaded.sort((a, b) => a.signsFrom - b.signsFrom);
    return changed;
  }

  private async privateKey(row: SigningKeyRow): Promise<CryptoKey> {
    const known = this.imported.get(row.kid);
    if (known) return known;
    const key = await importJWK(row.privateJwk, jwtSettings.algorithm);
    if (!(key instanceof CryptoKey)) throw new Error(`signing key ${row.kid} is not an EC private key`);
    this.imported.set(row.kid, key);
    return key;
  }

  /**
   * The key to sign with at `at`: the one that started signing last. Only a clock behind the
   * database's, just after the first key was made (or a revocation), finds none started: it
   * takes the earliest.
   */
  signingKey(at = Date.now()): SigningKey {
    const started = this.loaded.filter((k) => k.signsFrom <= at);
    const key = (started.at(-1) ?? this.loaded[0])?.key;
    if (!key) throw new Error("identity has no signing key loaded");
    if (key.kid !== this.signingKid) {
      log.info("signing with key", { kid: key.kid, previous: this.signingKid });
      this.signingKid = key.kid;
    }
    return key;
  }

  /**
   * The JWKS document at `at`: the public half of every key still published, with kid, alg and
   * use. The same object while the set is unchanged (the in-process verifier rebuilds on a change).
   */
  jwks(at = Date.now()): JSONWebKeySet {
    const keys = this.loaded.filter((k) => k.publishedUntil === undefined || k.publishedUntil > at);
    const kids = keys.map((k) => k.key.kid).join(" ");
    if (kids !== this.published.kids) this.published = { kids, jwks: { keys: keys.map((k) => k.publicJwk) } };
    return this.published.jwks;
  }
}
