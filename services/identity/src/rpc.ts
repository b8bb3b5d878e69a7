import { isIP } from "node:net";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { clientAddressMetadata, isAdmin, requireUserId } from "@bazaar/platform/auth";
import { FailedPreconditionError, NotFoundError } from "@bazaar/platform/errors";
import type { ServiceAccess, ServiceImpl } from "@bazaar/platform/grpc/server";
import type { CallContext } from "@bazaar/platform/grpc/interceptors";
import type { IdentityService, TokensSchema, UserSchema } from "@bazaar/proto/bazaar/identity/v1/identity_pb";
import type { Accounts, Session, User } from "./accounts.ts";
import { field, nonEmpty, text, uuid, validate, violation } from "@bazaar/platform/validation";

// Dot-separated atoms of RFC 5322's allowed characters @ LDH host labels, with a dot in the
// domain: strict enough to catch typos, loose enough for plus-addressing and subdomains.
const atom = "[a-z0-9!#$%&'*+/=?^_`{|}~-]+";
const label = "[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?";
const emailPattern = new RegExp(`^${atom}(?:\\.${atom})*@${label}(?:\\.${label})+$`);
// Control characters, and the invisible format characters (bidi overrides …) that spoof names.
const unprintable = /[\p{Cc}\p{Cf}]/u;

/** Length in characters (code points), not UTF-16 units. */
const length = (s: string) => [...s].length;

/**
 * Who may call what: signing in is for anyone; reading a user needs a signed-in caller.
 * IssueServiceToken is retired and refuses everyone; it stays "public" here so that an old
 * caller, which has no token yet, reaches the refusal that names the token endpoint instead of
 * an UNAUTHENTICATED. The gateway does not let deprecated RPCs through without a token.
 */
export const identityAccess: ServiceAccess<typeof IdentityService> = {
  register: "public",
  login: "public",
  refresh: "public",
  logout: "public",
  getUser: "user",
  issueServiceToken: "public",
};

/** The refusal of the retired IssueServiceToken, naming what replaced it. */
export const issueServiceTokenRetired = () =>
  new FailedPreconditionError(
    "IssueServiceToken is retired: get a service token from identity's OAuth 2.0 token endpoint, POST /oauth2/token on its HTTP port " +
      "(grant_type=client_credentials, client id and secret in an Authorization: Basic header; see the token_endpoint of /.well-known/openid-configuration)",
    [{ type: "DEPRECATED", subject: "bazaar.identity.v1.IdentityService/IssueServiceToken", description: "use the OAuth 2.0 token endpoint /oauth2/token" }],
  );

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

/** A sign-in's email, normalized: required and at most 254 characters, like every stored one. */
const signInEmail = (raw: string) => text({ max: 254, required: true })(normalizeEmail(raw));

/** A registration's email, checked and normalized (a validation rule, like the ones below). */
export function validEmail(raw: string): string {
  const email = signInEmail(raw);
  const local = email.slice(0, email.lastIndexOf("@"));
  if (!emailPattern.test(email) || local.length > 64) violation("must be an email address such as ada@example.com");
  return email;
}

/** A new password, checked: 10 to 128 characters. Spaces count; nothing is trimmed. */
export function validPassword(password: string): string {
  const n = length(password);
  if (n < 10 || n > 128) violation(`must be 10 to 128 characters, got ${n}`);
  return password;
}

/**
 * A sign-in's password: required, and at most 128 characters: no account has a longer one,
 * and this also bounds the work a request can ask for.
 */
function signInPassword(password: string): string {
  if (length(nonEmpty(password)) > 128) violation("must be at most 128 characters");
  return password;
}

/** A display name, trimmed and checked: 1 to 80 printable characters. */
export function validDisplayName(raw: string): string {
  const name = raw.trim();
  const n = length(name);
  if (n < 1 || n > 80) violation(`must be 1 to 80 characters after trimming, got ${n}`);
  if (unprintable.test(name)) violation("must not contain control or invisible formatting characters");
  return name;
}

/**
 * The address of the shopper a sign-in comes from, which the login throttle counts by. A
 * caller with a service token (the BFF) speaks for a client elsewhere and names its address
 * in the `x-client-address` metadata; from anyone else that metadata is ignored (a caller
 * could otherwise pick a fresh address per guess, or an owner's address to lock it) and the
 * connection's peer address counts.
 */
export function clientAddress(ctx: Pick<CallContext, "metadata" | "peer" | "principal">): string {
  const given = ctx.metadata.get(clientAddressMetadata)[0];
  if (ctx.principal?.roles.includes("service") && typeof given === "string") {
    const address = given.trim().toLowerCase();
    // An IPv4 or IPv6 address as a proxy writes it, without a port (what the BFF's edge checks too).
    if (isIP(address) === 0) violation(`${clientAddressMetadata} must be an IP address, got ${JSON.stringify(given.slice(0, 64))}`);
    return address;
  }
  // grpc-js writes the peer as host:port, an IPv6 host in brackets.
  return ctx.peer.replace(/:\d+$/, "").replace(/^\[(.*)\]$/, "$1");
}

function refreshToken(token: string): string {
  return validate({ token: field("refresh_token", token, nonEmpty) }).token;
}

/** The identity service's RPC handlers: validate the request, ask the accounts, shape the response. */
export function identityHandlers(accounts: Accounts): ServiceImpl<typeof IdentityService> {
  return {
    async register(req, ctx) {
      const account = validate({
        email: field("email", req.email, validEmail),
        password: field("password", req.password, validPassword),
        displayName: field("display_name", req.displayName, validDisplayName),
      });
      await accounts.register(account, clientAddress(ctx));
      return {};
    },

    async login(req, ctx) {
      const { email, password } = validate({
        email: field("email", req.email, signInEmail),
        password: field("password", req.password, signInPassword),
      });
      const { user, session } = await accounts.login(email, password, clientAddress(ctx));
      return { user: toUserMessage(user), tokens: toTokensMessage(session) };
    },

    async refresh(req) {
      return { tokens: toTokensMessage(await accounts.refresh(refreshToken(req.refreshToken))) };
    },

    async logout(req) {
      await accounts.logout(refreshToken(req.refreshToken));
      return {};
    },

    async getUser(req, ctx) {
      if (!req.id) return { user: toUserMessage(await accounts.user(requireUserId(ctx.principal))) };
      const { id } = validate({ id: field("id", req.id, uuid("a user id")) });
      const mayReadOthers = isAdmin(ctx.principal) || (ctx.principal?.roles.includes("service") ?? false);
      // Another user's account is as invisible as a missing one.
      if (id !== ctx.principal?.userId && !mayReadOthers) throw new NotFoundError(`no user has id ${id}`);
      return { user: toUserMessage(await accounts.user(id)) };
    },

    issueServiceToken() {
      throw issueServiceTokenRetired();
    },
  };
}
