/**
 * Signing-key rotation end to end, every interval compressed to seconds: two identity replicas
 * on one database rotate their key every few seconds while a steady load refreshes sessions at
 * both and makes verified calls with every token it gets and with older ones still valid — at
 * the platform's verifier against identity's JWKS over HTTP, at cart over gRPC, and at identity
 * itself. A watcher records both replicas' JWKS and the keys table all along. Then an operator
 * revokes the keys by command.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { status } from "@grpc/grpc-js";
import postgres from "postgres";
import { AccessTokenVerifier } from "@bazaar/platform/auth";
import { ensureDatabase } from "@bazaar/platform/db";
import { createClient, type GrpcClient } from "@bazaar/platform/grpc/client";
import { configureLogging } from "@bazaar/platform/log";
import { eventually } from "@bazaar/testkit/eventually";
import { bearer, type LaunchedProcess, registerAndLogin, repoRoot, rpcError, uniqueName } from "@bazaar/testkit/fixtures";
import { TestScope } from "@bazaar/testkit/test-scope";
import { CartService } from "@bazaar/proto/bazaar/cart/v1/cart_pb";
import { IdentityService } from "@bazaar/proto/bazaar/identity/v1/identity_pb";
import { minimumLeadSeconds, retentionSeconds } from "../services/identity/src/signing-keys.ts";

const jwksCacheSeconds = 1;
const reloadMs = 500;
const leadSeconds = minimumLeadSeconds(jwksCacheSeconds, reloadMs);
const rotationSeconds = leadSeconds + 1;
const tokenTtlSeconds = 30; // the shortest identity allows
const settings = {
  JWKS_CACHE_SECONDS: String(jwksCacheSeconds),
  SIGNING_KEY_RELOAD_MS: String(reloadMs),
  SIGNING_KEY_LEAD_SECONDS: String(leadSeconds),
  SIGNING_KEY_ROTATION_SECONDS: String(rotationSeconds),
  ACCESS_TOKEN_TTL_SECONDS: String(tokenTtlSeconds),
  SERVICE_TOKEN_TTL_SECONDS: String(tokenTtlSeconds),
  LOG_LEVEL: "warn",
};

/** A part of a compact JWT: 0 the header, 1 the claims. */
const jwtPart = (token: string, part: 0 | 1) => JSON.parse(Buffer.from(token.split(".")[part]!, "base64url").toString()) as Record<string, unknown>;

const scope = new TestScope();
const databaseUrl = scope.databaseUrl("identity");
let identityEnv: Record<string, string>;
let replicas: LaunchedProcess[] = [];
let identities: GrpcClient<typeof IdentityService>[] = [];
let cart: GrpcClient<typeof CartService>;
let verifier: AccessTokenVerifier;

/** What the watcher saw of one key in one replica's JWKS: first and last time, and when it was gone. */
interface Sighting {
  firstSeen: number;
  lastSeen: number;
  goneAt?: number;
  /** Set if the key came back after it was gone. */
  reappeared?: boolean;
}
/** Per replica, per kid. */
const published: Map<string, Sighting>[] = [new Map(), new Map()];
/** Each key's times as the keys table had them last. */
const schedule = new Map<string, { signsFrom: number; signsUntil: number | undefined }>();

/** A token the load got, and when it asked for it and got it. */
interface Issued {
  token: string;
  kid: string;
  replica: number;
  askedAt: number;
  gotAt: number;
  exp: number;
}
const issued: Issued[] = [];
const failures: string[] = [];
const verified = { platform: 0, cart: 0, identity: 0 };

beforeAll(async () => {
  configureLogging("rotation-test", "warn");
  const vhost = await scope.vhost();
  // Created up front: two processes creating one database at the same moment can race (see services/identity/test/process.test.ts).
  await ensureDatabase(databaseUrl);
  identityEnv = { ...settings, DATABASE_URL: databaseUrl, AMQP_URL: vhost.url };
  const started = await Promise.allSettled([scope.launch("identity", identityEnv), scope.launch("identity", identityEnv)]);
  replicas = started.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
  const failed = started.find((r) => r.status === "rejected");
  if (failed) throw failed.reason;
  identities = replicas.map((r) => scope.add(createClient(IdentityService, r.grpcAddress), (c) => c.close()));
  const jwksUrl = (i: number) => `${replicas[i]!.httpUrl}/.well-known/jwks.json`;
  // Cart verifies against replica 0's JWKS, the platform verifier here against replica 1's.
  const cartProcess = await scope.launch("cart", {
    JWKS_URL: jwksUrl(0),
    JWKS_CACHE_SECONDS: String(jwksCacheSeconds),
    AMQP_URL: vhost.url,
    LOG_LEVEL: "warn",
  });
  cart = scope.add(createClient(CartService, cartProcess.grpcAddress), (c) => c.close());
  verifier = new AccessTokenVerifier({ jwksUrl: jwksUrl(1), jwksCacheSeconds, issuer: "https://identity.bazaar.local", audience: "bazaar" });
}, 90_000);

afterAll(() => scope.cleanup(), 60_000);

/** Records both replicas' JWKS and the keys table every 100 ms until `stop` is set. */
function watch(control: { stop: boolean }): Promise<void> {
  const sql = scope.add(postgres(databaseUrl, { max: 1, onnotice: () => {} }), (s) => s.end({ timeout: 5 }));
  const once = async () => {
    const rows = await sql<{ kid: string; signs_from: Date; signs_until: Date | null }[]>`select kid, signs_from, signs_until from signing_keys`;
    for (const r of rows) schedule.set(r.kid, { signsFrom: r.signs_from.getTime(), signsUntil: r.signs_until?.getTime() });
    await Promise.all(
      replicas.map(async (replica, i) => {
        const { keys } = (await (await fetch(`${replica.httpUrl}/.well-known/jwks.json`)).json()) as { keys: { kid: string }[] };
        const at = Date.now();
        const seen = published[i]!;
        for (const { kid } of keys) {
          const s = seen.get(kid);
          if (!s) seen.set(kid, { firstSeen: at, lastSeen: at });
          else {
            if (s.goneAt) s.reappeared = true;
            s.lastSeen = at;
          }
        }
        for (const [kid, s] of seen) if (!s.goneAt && !keys.some((k) => k.kid === kid)) s.goneAt = at;
      }),
    );
  };
  return (async () => {
    while (!control.stop) {
      await once().catch((err: unknown) => failures.push(`the watcher could not read the keys: ${(err as Error).message}`));
      await Bun.sleep(100);
    }
  })();
}

/** One signed-in user refreshing at both replicas in turn and checking each token, and an older one, everywhere. */
async function load(worker: number, control: { stop: boolean }): Promise<void> {
  const email = `${uniqueName(`load${worker}`)}@example.com`;
  let refreshToken = (await registerAndLogin(identities[worker % 2]!, { email, displayName: "Load" })).tokens.refreshToken;
  const check = async (t: Issued) => {
    const what = `a token of key ${t.kid.slice(0, 8)} from replica ${t.replica}`;
    await verifier.verify(t.token).then(
      () => verified.platform++,
      (err: Error) => failures.push(`platform verifier refused ${what}: ${err.message}`),
    );
    await cart.getCart({}, bearer(t.token)).then(
      () => verified.cart++,
      (err: Error) => failures.push(`cart refused ${what}: ${err.message}`),
    );
    // Identity verifies in process: the replica that did not issue the token.
    await identities[1 - t.replica]!.getUser({}, bearer(t.token)).then(
      () => verified.identity++,
      (err: Error) => failures.push(`identity refused ${what}: ${err.message}`),
    );
  };
  for (let n = 0; !control.stop; n++) {
    const replica = (worker + n) % 2;
    const askedAt = Date.now();
    try {
      const { tokens } = await identities[replica]!.refresh({ refreshToken });
      refreshToken = tokens!.refreshToken;
      const token = tokens!.accessToken;
      const got: Issued = { token, kid: String(jwtPart(token, 0).kid), replica, askedAt, gotAt: Date.now(), exp: Number(jwtPart(token, 1).exp) * 1000 };
      issued.push(got);
      // An older token that is still valid for a while, maybe of a key that no longer signs.
      const valid = issued.filter((t) => t.exp > Date.now() + 3000);
      const older = valid[Math.floor(Math.random() * valid.length)];
      await check(got);
      if (older && older !== got) await check(older);
    } catch (err) {
      failures.push(`refresh at replica ${replica} failed: ${(err as Error).message}`);
    }
    // A steady pace, not a flood: the machine is shared.
    await Bun.sleep(100);
  }
}

const kidsThatSigned = () => [...new Set(issued.map((t) => t.kid))];
const firstKid = () => issued[0]?.kid;

describe("signing-key rotation under load", () => {
  test("while keys rotate again and again, every token verifies: at the platform verifier, at cart over gRPC and at identity itself", async () => {
    const control = { stop: false };
    const watcher = watch(control);
    await eventually(() => published.every((p) => p.size > 0), { what: "the watcher to see both replicas' JWKS" });
    const workers = [0, 1].map((w) => load(w, control));
    const started = Date.now();
    try {
      // Until the first key, retired, has outlived its last token and left both JWKS, with two rotations at least.
      await eventually(() => kidsThatSigned().length >= 3 && published.every((p) => p.get(firstKid() ?? "")?.goneAt !== undefined), {
        what: "two rotations and the first key's removal from both replicas' JWKS",
        timeoutMs: 90_000,
        intervalMs: 200,
      });
    } finally {
      control.stop = true;
      await Promise.all([...workers, watcher]);
    }
    const rotations = kidsThatSigned().length - 1;
    console.log(
      `rotation under load: ${issued.length} tokens from ${kidsThatSigned().length} keys (${rotations} rotations) in ${((Date.now() - started) / 1000).toFixed(1)} s; ` +
        `verified ${verified.platform} at the platform verifier, ${verified.cart} at cart, ${verified.identity} at identity; ${failures.length} failures`,
    );
    expect(failures).toEqual([]);
    expect(rotations).toBeGreaterThanOrEqual(2);
    const checks = issued.length;
    expect(verified.platform).toBeGreaterThanOrEqual(checks);
    expect(verified.cart).toBeGreaterThanOrEqual(checks);
    expect(verified.identity).toBeGreaterThanOrEqual(checks);
  }, 120_000);

  test("every token's key was in both replicas' JWKS before the token was asked for; a successor for longer than any verifier caches the JWKS", () => {
    expect(issued.length).toBeGreaterThan(0);
    for (const t of issued) {
      for (const seen of published)
        expect({ kid: t.kid, seenBeforeAsked: (seen.get(t.kid)?.firstSeen ?? Infinity) <= t.askedAt }).toEqual({ kid: t.kid, seenBeforeAsked: true });
    }
    for (const kid of kidsThatSigned().slice(1)) {
      const firstUse = Math.min(...issued.filter((t) => t.kid === kid).map((t) => t.askedAt));
      for (const seen of published) expect(firstUse - seen.get(kid)!.firstSeen).toBeGreaterThanOrEqual(jwksCacheSeconds * 1000);
    }
  });

  test("both replicas sign with the key the schedule names at that moment, and switch together", () => {
    for (const t of issued) {
      const key = schedule.get(t.kid);
      expect(key).toBeDefined();
      // Signed between asking and getting: the key was signing at some moment in that window.
      const inWindow = key!.signsFrom <= t.gotAt && (key!.signsUntil === undefined || key!.signsUntil >= t.askedAt);
      expect({ kid: t.kid, replica: t.replica, inWindow }).toEqual({ kid: t.kid, replica: t.replica, inWindow: true });
    }
    // Both replicas' tokens are checked above; over the run both signed with the schedule's keys.
    // (Not every key need sign at both: on a busy machine a key's few seconds may pass with one
    // replica's worker waiting.)
    expect(new Set(issued.map((t) => t.replica))).toEqual(new Set([0, 1]));
  });

  test("a retired key stays published until the last token it signed has expired, and is then removed", () => {
    const first = firstKid()!;
    const lastExp = Math.max(...issued.filter((t) => t.kid === first).map((t) => t.exp));
    const retiredAt = schedule.get(first)!.signsUntil!;
    expect(lastExp).toBeLessThanOrEqual(retiredAt + tokenTtlSeconds * 1000);
    for (const seen of published) {
      const s = seen.get(first)!;
      expect(s.reappeared).toBeUndefined();
      expect(s.lastSeen).toBeGreaterThanOrEqual(lastExp);
      // Removed once the retention is over, within a poll or two.
      expect(s.goneAt!).toBeGreaterThanOrEqual(retiredAt + retentionSeconds({ longestTokenTtlSeconds: tokenTtlSeconds }) * 1000);
      expect(s.goneAt! - (retiredAt + retentionSeconds({ longestTokenTtlSeconds: tokenTtlSeconds }) * 1000)).toBeLessThan(2000);
    }
  });

  test("two replicas make one successor per rotation, a rotation apart, and publish the same keys", () => {
    const byStart = [...schedule.entries()].sort((a, b) => a[1].signsFrom - b[1].signsFrom);
    expect(byStart.length).toBeGreaterThanOrEqual(3);
    for (let i = 1; i < byStart.length; i++) {
      expect(byStart[i]![1].signsFrom - byStart[i - 1]![1].signsFrom).toBeGreaterThanOrEqual(rotationSeconds * 1000);
      expect(byStart[i - 1]![1].signsUntil).toBe(byStart[i]![1].signsFrom);
    }
    const [a, b] = published;
    expect([...a!.keys()].sort()).toEqual([...b!.keys()].sort());
    // Each replica shows a new key within its reload of the other.
    for (const [kid, s] of a!) expect(Math.abs(s.firstSeen - b!.get(kid)!.firstSeen)).toBeLessThan(reloadMs + 500);
  });
});

describe("the operator's rotate command", () => {
  const command = (...args: string[]) =>
    Bun.spawn(["bun", "services/identity/src/rotate-signing-key.ts", ...args], {
      cwd: repoRoot,
      env: { ...process.env, ...identityEnv },
      stdout: "pipe",
      stderr: "pipe",
    });

  test("its help says that revoking makes the old keys' tokens refused", async () => {
    const help = command("--help");
    expect(await help.exited).toBe(0);
    const text = await new Response(help.stdout).text();
    expect(text).toContain("--revoke");
    expect(text).toContain("REFUSED");
  });

  test("--revoke: tokens the old keys signed are refused everywhere, saying the key is not published; new tokens verify", async () => {
    const email = `${uniqueName("revoke")}@example.com`;
    const signedIn = await registerAndLogin(identities[0]!, { email, displayName: "Revoke" });
    const old = signedIn.tokens!.accessToken;
    await cart.getCart({}, bearer(old));
    const run = command("--revoke");
    const [code, out, err] = await Promise.all([run.exited, new Response(run.stdout).text(), new Response(run.stderr).text()]);
    expect({ code, err: code === 0 ? "" : err }).toEqual({ code: 0, err: "" });
    const newKid = /^key (\S+): signs from/m.exec(out)?.[1];
    expect(newKid).toBeDefined();
    const refused = "signed with a key the issuer does not publish";
    // Within a reload identity drops the old keys; within a JWKS cache every verifier has.
    await eventually(
      async () => {
        await expect(verifier.verify(old)).rejects.toThrow(refused);
        const calls = [() => cart.getCart({}, bearer(old)), () => identities[0]!.getUser({}, bearer(old)), () => identities[1]!.getUser({}, bearer(old))];
        for (const call of calls) {
          const e = await rpcError(call());
          expect(e.code).toBe(status.UNAUTHENTICATED);
          expect(e.message).toContain(refused);
        }
        return true;
      },
      { what: "every verifier to refuse the revoked key's token", timeoutMs: (jwksCacheSeconds + 5) * 1000 },
    );
    // The refresh token still works, and its new access token is signed with the new key.
    const { tokens } = await identities[1]!.refresh({ refreshToken: signedIn.tokens!.refreshToken });
    const fresh = tokens!.accessToken;
    expect(jwtPart(fresh, 0).kid).toBe(newKid!);
    await eventually(
      async () => {
        await verifier.verify(fresh);
        await cart.getCart({}, bearer(fresh));
        await identities[0]!.getUser({}, bearer(fresh));
        return true;
      },
      { what: "the new key's token to verify everywhere", timeoutMs: (jwksCacheSeconds + 5) * 1000 },
    );
  }, 30_000);
});
