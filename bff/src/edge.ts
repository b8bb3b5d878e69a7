import { BlockList, isIP } from "node:net";
import type { Context } from "hono";
import { getConnInfo } from "hono/bun";
import { createMiddleware } from "hono/factory";
import { secureHeaders } from "hono/secure-headers";

/**
 * The content security policy of every answer: the UI's script, stylesheet and API calls come
 * from the BFF itself; product images may also be https URLs (the catalog allows them) and
 * the favicon is a data: URL. No other site may frame a page (sign-in, checkout).
 */
const contentSecurityPolicy = {
  defaultSrc: ["'self'"],
  scriptSrc: ["'self'"],
  styleSrc: ["'self'"],
  imgSrc: ["'self'", "https:", "data:"],
  connectSrc: ["'self'"],
  fontSrc: ["'self'"],
  objectSrc: ["'none'"],
  baseUri: ["'none'"],
  formAction: ["'self'"],
  frameAncestors: ["'none'"],
};

/**
 * Security headers on every answer (Hono's secureHeaders, with its other defaults such as
 * Cross-Origin-Opener-Policy): the CSP above, X-Frame-Options DENY for browsers without
 * frame-ancestors, nosniff, and a Referrer-Policy that sends no path (an order's id, a
 * search) to another site.
 */
export const securityHeaders = secureHeaders({
  contentSecurityPolicy,
  xFrameOptions: "DENY",
  xContentTypeOptions: "nosniff",
  referrerPolicy: "same-origin",
  // HSTS is the edge's to send, for the host it serves: from here, over the dev certificate
  // on localhost:8443, it would pin every localhost port (the dev BFF's http too) to https.
  strictTransportSecurity: false,
});

/** The address family BlockList wants for an address. */
const familyOf = (address: string) => (isIP(address) === 6 ? "ipv6" : "ipv4");

/** Proxies whose X-Forwarded-Proto and X-Forwarded-For are believed: addresses and CIDRs ("10.0.0.0/8", "::1"). */
export function trustedProxies(entries: readonly string[]): BlockList {
  const list = new BlockList();
  for (const entry of entries) {
    const [address = "", prefix] = entry.split("/");
    const family = familyOf(address);
    if (prefix === undefined) list.addAddress(address, family);
    else list.addSubnet(address, Number(prefix), family);
  }
  return list;
}

/** The address the request came from (the proxy's, behind one); undefined outside a server (app.request() in tests). */
function peerAddress(c: Context): string | undefined {
  try {
    return getConnInfo(c).remote.address;
  } catch {
    return undefined;
  }
}

/** What {@link edgeRequest} puts in a request's context. */
export interface EdgeVariables {
  /** The browser's request reached the edge over TLS: the BFF's own https, or a trusted proxy's X-Forwarded-Proto. */
  overTls: boolean;
  /** The browser's address (see {@link browserAddress}); undefined outside a server. */
  clientAddress: string | undefined;
}

const isTrusted = (trusted: BlockList, address: string) => trusted.check(address, familyOf(address));

/**
 * The browser's address, which identity's login throttle counts by: the peer, or, while the
 * address at hand is a trusted proxy, the entry it appended to X-Forwarded-For (read from the
 * right). Entries a client wrote itself sit further left, behind the first untrusted address,
 * and are never reached; a malformed entry stops the walk at the proxy that passed it.
 */
export function browserAddress(peer: string | undefined, forwardedFor: string | undefined, trusted: BlockList): string | undefined {
  const hops = (forwardedFor ?? "").split(",").map((s) => s.trim());
  let address = peer;
  for (let i = hops.length - 1; i >= 0 && address !== undefined && isTrusted(trusted, address); i--) {
    const hop = hops[i]!;
    if (!isIP(hop)) break;
    address = hop;
  }
  return address;
}

/**
 * Tells whether the browser's request arrived over TLS, for the cookies' Secure flag, and
 * where it came from (see {@link browserAddress}), for the login throttle. Behind
 * the gateway the BFF sees plain http, so the gateway's X-Forwarded-Proto counts — but only
 * from a trusted proxy: anyone else could send the header.
 */
export function edgeRequest(trusted: BlockList) {
  return createMiddleware<{ Variables: EdgeVariables }>(async (c, next) => {
    const peer = peerAddress(c);
    let overTls = new URL(c.req.url).protocol === "https:";
    const forwarded = c.req.header("x-forwarded-proto");
    if (!overTls && forwarded) {
      // The nearest proxy's word is the last one in the list.
      const proto = forwarded.split(",").at(-1)?.trim().toLowerCase();
      overTls = proto === "https" && peer !== undefined && isTrusted(trusted, peer);
    }
    c.set("overTls", overTls);
    c.set("clientAddress", browserAddress(peer, c.req.header("x-forwarded-for"), trusted));
    await next();
  });
}
