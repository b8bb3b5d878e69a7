/**
 * The address every Bazaar server binds unless BIND_HOST names another: loopback, so a
 * developer's machine exposes nothing to its network.
 */
export const loopback = "127.0.0.1";

/** `host:port` as gRPC targets and URLs spell it, an IPv6 address in brackets: `[::1]:50051`. */
export function joinHostPort(host: string, port: number | string): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

/** One entry of a peer address list: a host (an IP address or a host name) and a port. */
export interface PeerAddress {
  host: string;
  port: number;
  /** 4 or 6 for an IP address, 0 for a host name. */
  family: 0 | 4 | 6;
}

const ipv4Pattern = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const hostNamePattern = /^[a-zA-Z0-9_]([a-zA-Z0-9_-]*[a-zA-Z0-9_])?(\.[a-zA-Z0-9_]([a-zA-Z0-9_-]*[a-zA-Z0-9_])?)*$/;

/**
 * Parses a peer address: one `host:port` or a comma-separated list of them (the replicas of a
 * service), an IPv6 address in brackets (`[::1]:50051`). A host name stands alone, since its
 * DNS records are the replicas (a Kubernetes headless Service); a list names IP addresses of one
 * family. Throws an Error saying what to fix.
 */
export function parsePeerAddresses(value: string): PeerAddress[] {
  const entries = value.split(",").map((e) => e.trim());
  const out = entries.map((entry): PeerAddress => {
    const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(entry);
    const port = m ? Number(m[3]) : Number.NaN;
    if (!m || port < 1 || port > 65535) throw new Error(`"${entry}" is not host:port (a port 1-65535; an IPv6 address in brackets, [::1]:50051)`);
    if (m[1] !== undefined) {
      if (!isIPv6(m[1])) throw new Error(`"${entry}": ${m[1]} in brackets is not an IPv6 address`);
      return { host: m[1], port, family: 6 };
    }
    const host = m[2] as string;
    if (ipv4Pattern.test(host)) return { host, port, family: 4 };
    if (!hostNamePattern.test(host)) throw new Error(`"${entry}": ${host} is neither an IP address nor a host name`);
    return { host, port, family: 0 };
  });
  if (out.length > 1) {
    if (out.some((a) => a.family === 0)) {
      throw new Error(`"${value}": a list names IP addresses only; a host name stands alone (every address it resolves to is a replica)`);
    }
    if (new Set(out.map((a) => a.family)).size > 1) throw new Error(`"${value}": a list names IPv4 or IPv6 addresses, not both`);
  }
  return out;
}

/** Whether `host` is an IPv6 address (as the URL parser reads one). */
function isIPv6(host: string): boolean {
  if (!host.includes(":") || !/^[0-9a-fA-F:.]+$/.test(host)) return false;
  try {
    new URL(`http://[${host}]/`);
    return true;
  } catch {
    return false;
  }
}
