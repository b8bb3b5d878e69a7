import { SignJWT } from "jose";
import { jwtSettings } from "@bazaar/platform/auth";
import type { SigningKeySource } from "./signing-keys.ts";

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
 * header and iss, aud, sub, roles, iat, exp and a unique jti as claims, with the key signing
 * at the moment of issue. Every service verifies them against identity's JWKS.
 */
export class AccessTokenIssuer {
  constructor(
    private readonly keys: SigningKeySource,
    private readonly options: AccessTokenOptions,
  ) {}

  /** A token for `subject` (a user id, or "service:<name>") with `roles`, valid `ttlSeconds`. */
  async issue(subject: string, roles: readonly string[], ttlSeconds: number): Promise<AccessToken> {
    // The key is picked by the same clock reading `exp` comes from: a key's last token expires
    // at most the token lifetime after the key stopped signing (see signing-keys.ts).
    const at = Date.now();
    const key = this.keys.signingKey(at);
    const now = Math.floor(at / 1000);
    const exp = now + ttlSeconds;
    const token = await new SignJWT({ roles: [...roles] })
      .setProtectedHeader({ alg: jwtSettings.algorithm, kid: key.kid, typ: "at+jwt" })
      .setIssuer(this.options.issuer)
      .setAudience(this.options.audience)
      .setSubject(subject)
      .setIssuedAt(now)
      .setExpirationTime(exp)
      .setJti(crypto.randomUUID())
      .sign(key.privateKey);
    return { token, expiresAt: new Date(exp * 1000) };
  }
}
