/**
 * Replicas in the dev runner (issue 13): `bun run dev --replicas catalog=3,orders=2,bff=2` (or
 * DEV_REPLICAS=catalog=3,orders=2) runs N instances of a process. Instance k (0-based) listens
 * on the catalog's ports plus k × {@link replicaPortStep}; the callers of a service get the list
 * of every instance's gRPC address as `<NAME>_ADDR`, and the chassis's client balances across
 * them. BFF instances share the sessions (Redis) and each follows every event, so a browser may
 * use any of them (the storefront at :3000, :3100, …; Envoy balances them under compose).
 */
import { joinHostPort, loopback } from "@bazaar/platform/host-port";
import { serviceCatalog, type ServiceEntry } from "@bazaar/platform/service-catalog";

/**
 * The distance between the ports of two instances of a service. The catalog's ports are
 * 50051-50057 (gRPC) and 9101-9107 (HTTP): at steps of 100, up to {@link maxReplicas} instances
 * stay within 50051-50957 and 9101-10007, apart from every other port of the catalog (3000, 9100)
 * and of the monitoring (9090, 9093, 9110, 9121, 9187, 15692, 16686, 4318).
 */
export const replicaPortStep = 100;

/** The most instances of one service. */
export const maxReplicas = 9;

/** Instances by service name; a service not named runs once. */
export type Replicas = ReadonlyMap<string, number>;

const replicable = (serviceCatalog as readonly ServiceEntry[]).map((e) => e.name);

/**
 * Parses `catalog=3,orders=2`; empty means no replicas. Throws an Error saying what to fix: a
 * name that is not a gRPC service of the catalog, a count that is not 1-{@link maxReplicas}, a
 * service named twice.
 */
export function parseReplicas(value: string): Replicas {
  const out = new Map<string, number>();
  if (value.trim() === "") return out;
  for (const raw of value.split(",")) {
    const item = raw.trim();
    const m = /^([a-z]+)=(\S*)$/.exec(item);
    if (!m) throw new Error(`"${item}" is not service=count (e.g. catalog=3)`);
    const [, name, count] = m as unknown as [string, string, string];
    if (!replicable.includes(name)) throw new Error(`"${item}": ${name} is not a process of the catalog; replicas are for ${replicable.join(", ")}`);
    if (!/^\d+$/.test(count) || Number(count) < 1 || Number(count) > maxReplicas) {
      throw new Error(`"${item}": the count must be a whole number from 1 to ${maxReplicas}, got "${count}"`);
    }
    if (out.has(name)) throw new Error(`"${item}": ${name} is named twice`);
    out.set(name, Number(count));
  }
  return out;
}

/** The value of `--replicas X` or `--replicas=X` in `args`, undefined when absent. Throws when the flag has no value. */
export function replicasArg(args: readonly string[]): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    if (arg.startsWith("--replicas=")) return arg.slice("--replicas=".length);
    if (arg === "--replicas") {
      const next = args[i + 1];
      if (next === undefined || next.startsWith("--")) throw new Error("--replicas needs a value, e.g. --replicas catalog=3,orders=2");
      return next;
    }
  }
  return undefined;
}

/** One process the runner starts: an instance of a catalog entry. */
export interface Instance {
  entry: ServiceEntry;
  /** 0-based. */
  index: number;
  /** The process's name: the service's, or `<service>-<k+1>` when it runs more than once. */
  name: string;
  /** Its ports (with any offset already applied by `port`). */
  grpcPort?: number;
  httpPort: number;
  metricsPort?: number;
}

/**
 * Every process of the catalog, each entry as many times as `replicas` says, in catalog order;
 * `port` applies the runner's DEV_PORT_OFFSET to a catalog port.
 */
export function instances(entries: readonly ServiceEntry[], replicas: Replicas, port: (p: number) => number = (p) => p): Instance[] {
  return entries.flatMap((entry) => {
    const n = replicas.get(entry.name) ?? 1;
    return Array.from({ length: n }, (_, index): Instance => {
      const shift = index * replicaPortStep;
      return {
        entry,
        index,
        name: n === 1 ? entry.name : `${entry.name}-${index + 1}`,
        ...(entry.grpcPort !== undefined ? { grpcPort: port(entry.grpcPort) + shift } : {}),
        httpPort: port(entry.httpPort) + shift,
        ...(entry.metricsPort !== undefined ? { metricsPort: port(entry.metricsPort) + shift } : {}),
      };
    });
  });
}

/** `<NAME>_ADDR` of each gRPC service: the comma-separated gRPC addresses of all its instances. */
export function peerAddresses(all: readonly Instance[], host = loopback): Record<string, string> {
  const out: Record<string, string[]> = {};
  for (const i of all) {
    if (i.grpcPort === undefined) continue;
    const key = `${i.entry.name.toUpperCase()}_ADDR`;
    out[key] ??= [];
    out[key].push(joinHostPort(host, i.grpcPort));
  }
  return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, v.join(",")]));
}
