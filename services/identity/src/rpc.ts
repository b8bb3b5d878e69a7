import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { isAdmin, requireUserId } from "@bazaar/platform/auth";
import { InvalidArgumentError, NotFoundError } from "@bazaar/platform/errors";
import type { ServiceAccess, ServiceImpl } from "@bazaar/platform/grpc/server";
import { IdentityService, type TokensSchema, type UserSchema } from "@bazaar/proto/bazaar/identity/v1/identity_pb";
import type { Accounts, Session, User } from "./accounts.ts";
import { uuidPattern } from "@bazaar/platform/ids";

// Dot-separated atoms of RFC 5322's allowed characters @ LDH host labels, with a dot in the
// domain: strict enough to catch typos, loose enough for plus-addressing and subdomains.
const atom = "[a-z0-9!#$%&'*+/=?^_`{|}~-]+";
const label = "[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?";
const emailPattern = new RegExp(`^${atom}(?:\\.${atom})*@${label}(?:\\.${label})+$`);
const servicePattern = /^[a-z][a-z0-9-]{1,31}$/;
// Control characters, and the invisible format characters (bidi overrides …) that spoof names.
const unprintable = /[\p{Cc}\p{Cf}]/u;

/** Length in characters (code points), not UTF-16 units. */
const length = (s: string) => [...s].length;

/** Who may call what: signing in is for anyone; reading a user needs a signed-in caller. */
export const identityAccess: ServiceAccess<typeof IdentityService> = {
  register: "public",
  login: "public",
  refresh: "public",
  logout: "public",
  getUser: "user",
  issueServiceToken: "public",
};

/** Row → message. */
export function toUserMessage(u: User): MessageInitShape<typeof UserSchema> {
  return { id: u.id, email: u.email, displayName: u.displayName, roles: u.roles, createTime: timestampFromDate(u.createdAt) };
}

/** Session → message. */
export function toTokensMessage(s: Session): MessageInitShape<typeof TokensSchema> {
  return {
    accessToken: s.access.token,
    accessTokenExpireTime: timestampFromDate(s.access.expiresAt),
    refreshToken: s.refreshToken,
    refreshTokenExpireTime: timestampFromDate(s.refreshExpiresAt),
  };
}

/** An email as stored: trimmed and lower-cased. */
export function normalizeEmail(email: string): string {
  return email.trim().toLowerCase();
}

/** A registration's email, checked and normalized. */
export function validEmail(raw: string): string {
  const email = normalizeEmail(raw);
  if (!email) throw new InvalidArgumentError("is required", "email");
  if (email.length > 254) throw new InvalidArgumentError(`must be at most 254 characters, got ${email.length}`, "email");
  const local = email.slice(0, email.lastIndexOf("@"));
  if (!emailPattern.test(email) || local.length > 64) {
    throw new InvalidArgumentError("must be an email address such as ada@example.com", "email");
  }
  return email;
}

/** A new password, checked: 10 to 128 characters. Spaces count; nothing is trimmed. */
export function validPassword(password: string): string {
  const n = length(password);
  if (n < 10 || n > 128) throw new InvalidArgumentError(`must be 10 to 128 characters, got ${n}`, "password");
  return password;
}

/** A display name, trimmed and checked: 1 to 80 printable characters. */
export function validDisplayName(raw: string): string {
  const name = raw.trim();
  const n = length(name);
  if (n < 1 || n > 80) throw new InvalidArgumentError(`must be 1 to 80 characters after trimming, got ${n}`, "display_name");
  if (unprintable.test(name)) throw new InvalidArgumentError("must not contain control or invisible formatting characters", "display_name");
  return name;
}

function requiredToken(token: string): string {
  if (!token) throw new InvalidArgumentError("is required", "refresh_token");
  return token;
}

/** The identity service's RPC handlers: validate the request, ask the accounts, shape the response. */
export function identityHandlers(accounts: Accounts): ServiceImpl<typeof IdentityService> {
  return {
    async register(req) {
      const account = { email: validEmail(req.email), password: validPassword(req.password), displayName: validDisplayName(req.displayName) };
      const { user, session } = await accounts.register(account);
      return { user: toUserMessage(user), tokens: toTokensMessage(session) };
    },

    async login(req) {
      const email = normalizeEmail(req.email);
      if (!email) throw new InvalidArgumentError("is required", "email");
      if (email.length > 254) throw new InvalidArgumentError(`must be at most 254 characters, got ${email.length}`, "email");
      if (!req.password) throw new InvalidArgumentError("is required", "password");
      // No account has a longer one; this also bounds the work a request can ask for.
      if (length(req.password) > 128) throw new InvalidArgumentError("must be at most 128 characters", "password");
      const { user, session } = await accounts.login(email, req.password);
      return { user: toUserMessage(user), tokens: toTokensMessage(session) };
    },

    async refresh(req) {
      return { tokens: toTokensMessage(await accounts.refresh(requiredToken(req.refreshToken))) };
    },

    async logout(req) {
      await accounts.logout(requiredToken(req.refreshToken));
      return {};
    },

    async getUser(req, ctx) {
      if (!req.id) return { user: toUserMessage(await accounts.user(requireUserId(ctx.principal))) };
      if (!uuidPattern.test(req.id)) throw new InvalidArgumentError(`must be a user id (a UUID), got ${JSON.stringify(req.id.slice(0, 64))}`, "id");
      const id = req.id.toLowerCase();
      const mayReadOthers = isAdmin(ctx.principal) || (ctx.principal?.roles.includes("service") ?? false);
      // Another user's account is as invisible as a missing one.
      if (id !== ctx.principal?.userId && !mayReadOthers) throw new NotFoundError(`no user has id ${id}`);
      return { user: toUserMessage(await accounts.user(id)) };
    },

    async issueServiceToken(req) {
      if (!servicePattern.test(req.serviceName)) {
        throw new InvalidArgumentError("must be a service name: a lower-case letter, then 1 to 31 lower-case letters, digits or dashes", "service_name");
      }
      const access = await accounts.serviceToken(req.serviceName, req.secret);
      return { accessToken: access.token, expireTime: timestampFromDate(access.expiresAt) };
    },
  };
}
