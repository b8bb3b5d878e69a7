import { createLocalJWKSet, createRemoteJWKSet, errors as joseErrors, type JSONWebKeySet, type JWTPayload, type JWTVerifyGetKey, jwtVerify } from "jose";
import { PermissionDeniedError, UnauthenticatedError } from "./errors.ts";

/**
 * Who is calling: a user (customer or admin), or a service acting on nobody's behalf.
 * Built only from a verified access token.
 */
export interface Principal {
  /** The token's subject: a user id, or "service:<name>". */
  subject: string;
  /** The user's id; undefined for a service. */
  userId: string | undefined;
  /** Roles: "customer", "admin", "service". */
  roles: readonly string[];
}

/** The JWT settings every issuer and verifier in Bazaar agrees on. */
export const jwtSettings = {
  /** The only signature algorithm accepted: ECDSA P-256 with SHA-256. `none` and HMAC never. */
  algorithm: "ES256",
  /** Clock skew tolerated between machines, in seconds. */
  clockToleranceSeconds: 5,
  /** How long a verifier keeps the JWKS unless told otherwise (authEnv's JWKS_CACHE_SECONDS). */
  jwksCacheSeconds: 300,
} as const;

/**
 * How the platform verifier caches a remote JWKS that may be kept `cacheSeconds`: refetched
 * once older than that, and on a token naming an unknown key unless it fetched within the
 * cooldown (which stops a stream of made-up kids from hammering the issuer).
 */
export function jwksCacheOptions(cacheSeconds: number): { cacheMaxAge: number; cooldownDuration: number } {
  const cacheMaxAge = cacheSeconds * 1000;
  return { cacheMaxAge, cooldownDuration: Math.min(30_000, cacheMaxAge) };
}

/** Where an {@link AccessTokenVerifier} finds the issuer's keys. */
export type VerifierKeys =
  | {
      /** Where the issuer publishes its signing keys, e.g. http://127.0.0.1:9101/.well-known/jwks.json. */
      jwksUrl: string;
      /** The longest the key set is kept before it is fetched again (JWKS_CACHE_SECONDS); 300 unless given. */
      jwksCacheSeconds?: number;
    }
  | {
      /**
       * The issuer's key set as it is now, read on every verification: for the issuer itself
       * (identity), which checks its own tokens in process, with no HTTP round trip to itself.
       */
      jwks: () => JSONWebKeySet;
    };

/** Options of {@link AccessTokenVerifier}. */
export type VerifierOptions = VerifierKeys & {
  /** The `iss` every token must carry. */
  issuer: string;
  /** The `aud` every token must carry. */
  audience: string;
};

/** Verifies against a key set given in process, rebuilt whenever the set handed out changes. */
function localKeys(current: () => JSONWebKeySet): JWTVerifyGetKey {
  let set: JSONWebKeySet | undefined;
  let getKey: JWTVerifyGetKey | undefined;
  return (header, token) => {
    const now = current();
    if (now !== set || !getKey) {
      set = now;
      getKey = createLocalJWKSet(now);
    }
    return getKey(header, token);
  };
}

/** The longest a verified token is trusted without being checked again. */
const verifiedTokenMaxAgeMs = 30_000;

/**
 * Tokens verified lately, by their exact text, so that a token presented again — a service's
 * token on every call it makes, a shopper's on every page — is not checked again: the
 * signature check was about a tenth of the CPU of a service's call. An entry lasts until the
 * token expires or `maxAgeMs` passed, whichever is first; the oldest goes when it is full.
 */
class VerifiedTokens {
  private readonly entries = new Map<string, { principal: Principal; until: number }>();

  constructor(
    private readonly maxAgeMs: number,
    private readonly maxEntries = 10_000,
  ) {}

  get(token: string, now: number): Principal | undefined {
    const entry = this.entries.get(token);
    if (entry && now < entry.until) return entry.principal;
    if (entry) this.entries.delete(token);
    return undefined;
  }

  set(token: string, principal: Principal, expiresAtSeconds: number, now: number): void {
    const until = Math.min(expiresAtSeconds * 1000, now + this.maxAgeMs);
    if (until <= now) return;
    if (this.entries.size >= this.maxEntries) this.entries.delete(this.entries.keys().next().value as string);
    this.entries.set(token, { principal, until });
  }

  clear(): void {
    this.entries.clear();
  }
}

/**
 * Verifies access tokens: signature against the issuer's JWKS (fetched and cached for
 * `jwksCacheSeconds`, refetched when a token names an unknown key), algorithm allow-list,
 * issuer, audience and expiry. Each failure is UNAUTHENTICATED with a message saying which
 * check failed.
 *
 * A token that verified is trusted again without the checks until it expires, for at most
 * 30 s and never longer than the key set itself is cached (`jwksCacheSeconds`), so revoking
 * the keys reaches a verifier within twice that at worst; with a key set given in process,
 * every change of the set forgets the verified tokens at once.
 */
export class AccessTokenVerifier {
  private readonly jwks: JWTVerifyGetKey;
  private readonly verified: VerifiedTokens;
  /** The in-process key set the verified tokens were checked against. */
  private keySetSeen: JSONWebKeySet | undefined;

  constructor(private readonly options: VerifierOptions) {
    const jwksCacheSeconds = "jwks" in options ? undefined : (options.jwksCacheSeconds ?? jwtSettings.jwksCacheSeconds);
    this.jwks =
      "jwks" in options
        ? localKeys(options.jwks)
        : createRemoteJWKSet(new URL(options.jwksUrl), { ...jwksCacheOptions(jwksCacheSeconds!), timeoutDuration: 3_000 });
    this.verified = new VerifiedTokens(Math.min(verifiedTokenMaxAgeMs, (jwksCacheSeconds ?? Number.POSITIVE_INFINITY) * 1000));
  }

  /** Verifies a compact JWT and returns its principal. */
  async verify(token: string): Promise<Principal> {
    if ("jwks" in this.options) {
      const keys = this.options.jwks();
      if (keys !== this.keySetSeen) {
        this.verified.clear();
        this.keySetSeen = keys;
      }
    }
    const now = Date.now();
    const known = this.verified.get(token, now);
    if (known) return known;
    const checked = await this.check(token);
    this.verified.set(token, checked.principal, checked.expiresAtSeconds, now);
    return checked.principal;
  }

  private async check(token: string): Promise<{ principal: Principal; expiresAtSeconds: number }> {
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, this.jwks, {
        algorithms: [jwtSettings.algorithm],
        issuer: this.options.issuer,
        audience: this.options.audience,
        clockTolerance: jwtSettings.clockToleranceSeconds,
        requiredClaims: ["sub", "exp", "iat"],
      }));
    } catch (err) {
      throw new UnauthenticatedError(describeJwtError(err));
    }
    const roles = Object.freeze(Array.isArray(payload.roles) ? payload.roles.filter((r): r is string => typeof r === "string") : []);
    const subject = payload.sub ?? "";
    // Frozen: the same principal is handed to every call that presents this token again.
    const principal = Object.freeze({ subject, userId: subject.startsWith("service:") ? undefined : subject, roles });
    return { principal, expiresAtSeconds: payload.exp ?? 0 };
  }
}

function describeJwtError(err: unknown): string {
  if (err instanceof joseErrors.JWTExpired) return "the access token has expired; refresh it and try again";
  if (err instanceof joseErrors.JWTClaimValidationFailed) return `the access token's ${err.claim} claim is not accepted (${err.reason})`;
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return `the access token's algorithm is not accepted; only ${jwtSettings.algorithm} is`;
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return "the access token's signature does not verify";
  if (err instanceof joseErrors.JWKSNoMatchingKey) return "the access token was signed with a key the issuer does not publish";
  if (err instanceof joseErrors.JWKSTimeout || (err instanceof joseErrors.JOSEError && err.code === "ERR_JWKS_INVALID")) {
    return "the issuer's signing keys could not be fetched";
  }
  if (err instanceof joseErrors.JWSInvalid || err instanceof joseErrors.JWTInvalid) return "the access token is malformed";
  return `the access token was rejected: ${(err as Error).message}`;
}

/**
 * Who may call an RPC:
 * - "public": anyone; a token, if sent, is still verified;
 * - "user": any signed-in user, admin or service;
 * - "admin": users with the admin role;
 * - "service": other services only (e.g. the orders saga's calls);
 * - "service_or_admin": either.
 */
export type Access = "public" | "user" | "admin" | "service" | "service_or_admin";

/**
 * The gRPC metadata in which a service (the BFF) names the address of the client it acts for
 * (identity's login throttle counts by it, and believes it only from a service token).
 */
export const clientAddressMetadata = "x-client-address";

/** The bearer token in an `authorization` header value, or undefined. */
export function bearerToken(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const match = /^Bearer\s+([A-Za-z0-9_\-.=]+)$/i.exec(header.trim());
  if (!match) throw new UnauthenticatedError("the authorization header must be 'Bearer <access token>'");
  return match[1];
}

/** Checks a verified principal (or its absence) against an access level; throws if refused. */
export function authorize(access: Access, principal: Principal | undefined, what: string): void {
  if (access === "public") return;
  if (!principal) throw new UnauthenticatedError(`${what} needs a signed-in caller: send 'authorization: Bearer <access token>'`);
  const has = (role: string) => principal.roles.includes(role);
  const allowed =
    access === "user" ||
    (access === "admin" && has("admin")) ||
    (access === "service" && has("service")) ||
    (access === "service_or_admin" && (has("service") || has("admin")));
  if (!allowed) throw new PermissionDeniedError(`${what} is only for ${access === "service_or_admin" ? "services and admins" : `the ${access} role`}`);
}

/** The caller's user id, or PERMISSION_DENIED for a caller that is not a user (a service). */
export function requireUserId(principal: Principal | undefined): string {
  if (!principal) throw new UnauthenticatedError("this call needs a signed-in user");
  if (!principal.userId) throw new PermissionDeniedError("this call acts for a user; a service token cannot make it");
  return principal.userId;
}

/** True if the principal has the admin role. */
export function isAdmin(principal: Principal | undefined): boolean {
  return principal?.roles.includes("admin") ?? false;
}
