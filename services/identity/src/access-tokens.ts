import { SignJWT } from "jose";
import { jwtSettings } from "@bazaar/platform/auth";
import type { SigningKey } from "./signing-keys.ts";

/** Options of {@link AccessTokenIssuer}. */
export interface AccessTokenOptions {
  /** `iss` of every token. */
  issuer: string;
  /** `aud` of every token. */
  audience: string;
}

/** A signed access token and when it expires. */
export interface AccessToken {
  token: string;
  expiresAt: Date;
}

/**
 * Signs access tokens: ES256 JWTs (RFC 9068 shape, `typ: at+jwt`) with the key's `kid` in the
 * header and iss, aud, sub, roles, iat, exp and a unique jti as claims. Every service verifies
 * them against identity's JWKS.
 */
export class AccessTokenIssuer {
  constructor(
    private readonly key: SigningKey,
    private readonly options: AccessTokenOptions,
  ) {}

  /** A token for `subject` (a user id, or "service:<name>") with `roles`, valid `ttlSeconds`. */
  async issue(subject: string, roles: readonly string[], ttlSeconds: number): Promise<AccessToken> {
    const now = Math.floor(Date.now() / 1000);
    const exp = now + ttlSeconds;
    const token = await new SignJWT({ roles: [...roles] })
      .setProtectedHeader({ alg: jwtSettings.algorithm, kid: this.key.kid, typ: "at+jwt" })
      .setIssuer(this.options.issuer)
      .setAudience(this.options.audience)
      .setSubject(subject)
      .setIssuedAt(now)
      .setExpirationTime(exp)
      .setJti(crypto.randomUUID())
      .sign(this.key.privateKey);
    return { token, expiresAt: new Date(exp * 1000) };
  }
}
