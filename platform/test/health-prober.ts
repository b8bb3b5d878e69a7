/**
 * A gRPC health prober in a process of its own, for grpc-limits.test.ts: checks
 * `grpc.health.v1.Health/Check` at the address given every 20 ms, on one connection, and
 * prints one JSON line per check ({ at, ms, code }), until it is killed. Measured from outside
 * the test process, the latency is the server's, not the attacker's event loop.
 *
 *     bun platform/test/health-prober.ts 127.0.0.1:50052
 */
import { create } from "@bufbuild/protobuf";
import { Client, credentials, Metadata, type ServiceError, status } from "@grpc/grpc-js";
import { methodDefinition } from "@bazaar/platform/grpc/definition";
import { Health, HealthCheckRequestSchema } from "@bazaar/proto/grpc/health/v1/health_pb";

const address = process.argv[2];
if (!address) {
  process.stderr.write("usage: bun health-prober.ts host:port\n");
  process.exit(2);
}
const check = methodDefinition(Health.method.check);
const client = new Client(address, credentials.createInsecure());
const request = create(HealthCheckRequestSchema, {});

for (;;) {
  const at = Date.now();
  const started = performance.now();
  const code = await new Promise<status>((resolve) =>
    client.makeUnaryRequest(
      check.path,
      check.requestSerialize,
      check.responseDeserialize,
      request,
      new Metadata(),
      { deadline: Date.now() + 30_000 },
      (err: ServiceError | null) => resolve(err ? err.code : status.OK),
    ),
  );
  process.stdout.write(`${JSON.stringify({ at, ms: Math.round(performance.now() - started), code })}\n`);
  await Bun.sleep(20);
}
