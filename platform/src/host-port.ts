/**
 * The address every Bazaar server binds unless BIND_HOST names another: loopback, so a
 * developer's machine exposes nothing to its network.
 */
export const loopback = "127.0.0.1";

/** `host:port` as gRPC targets and URLs spell it, an IPv6 address in brackets: `[::1]:50051`. */
export function joinHostPort(host: string, port: number | string): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}
