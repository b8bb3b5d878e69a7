/**
 * `bun platform/src/health-probe.ts [target]`: a container healthcheck, since no
 * grpc_health_probe binary is at hand. Exits 0 when the target reports healthy, 1 otherwise,
 * within two seconds either way.
 *
 * - `host:port`: calls `grpc.health.v1.Health/Check` for the whole server ("").
 * - `http://…`: GETs the URL and expects 200 (the BFF's `/healthz`).
 * - no target: the gRPC port in `GRPC_PORT`, else `/healthz` on `HTTP_PORT`, at `BIND_HOST` —
 *   what every Bazaar process listens on, so one probe command fits every container. A
 *   wildcard BIND_HOST (compose's 0.0.0.0) or none is probed at 127.0.0.1, which it includes.
 *
 * Reads `process.env` directly: a probe is not an app with a configuration of its own.
 */
import { HealthCheckResponse_ServingStatus as ServingStatus, Health } from "@bazaar/proto/grpc/health/v1/health_pb";
import { createClient } from "./grpc/client.ts";
import { joinHostPort, loopback } from "./host-port.ts";

const timeoutMs = 2_000;

/** Where the process listens, as a probe can reach it: a wildcard address is reached on loopback. */
export function probeHost(bindHost: string | undefined): string {
  if (!bindHost || bindHost === "0.0.0.0") return loopback;
  if (bindHost === "::") return "::1";
  return bindHost;
}

function defaultTarget(): string {
  const host = probeHost(process.env.BIND_HOST);
  if (process.env.GRPC_PORT) return joinHostPort(host, process.env.GRPC_PORT);
  if (process.env.HTTP_PORT) return `http://${joinHostPort(host, process.env.HTTP_PORT)}/healthz`;
  throw new Error("give a target (host:port or an http:// URL), or set GRPC_PORT or HTTP_PORT");
}

/** Resolves to a line saying why the target is not healthy, or undefined when it is. */
export async function probe(target: string): Promise<string | undefined> {
  if (/^https?:\/\//.test(target)) {
    const res = await fetch(target, { signal: AbortSignal.timeout(timeoutMs) });
    return res.status === 200 ? undefined : `${target} answered HTTP ${res.status}`;
  }
  const client = createClient(Health, target, { defaultTimeoutMs: timeoutMs });
  try {
    const { status } = await client.check({ service: "" });
    return status === ServingStatus.SERVING ? undefined : `${target} is ${ServingStatus[status]}`;
  } finally {
    client.close();
  }
}

if (import.meta.main) {
  const target = process.argv[2] ?? defaultTarget();
  try {
    const problem = await probe(target);
    if (problem) {
      process.stderr.write(`unhealthy: ${problem}\n`);
      process.exit(1);
    }
    process.exit(0);
  } catch (err) {
    process.stderr.write(`unhealthy: ${target}: ${(err as Error).message}\n`);
    process.exit(1);
  }
}
