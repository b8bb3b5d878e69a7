/**
 * gRPC load generator: calls CatalogService/GetProduct through the platform's typed grpc-js
 * client (`createClient`) with a fixed number of calls in flight, for a warm-up and then a
 * measured window, and prints `result {json}` (see common.ts).
 *
 *   bun scripts/bench/grpc-load.ts --addr 127.0.0.1:50052 --id <uuid> --concurrency 32 --warmup 2 --duration 8
 *
 * The same generator drives the Bazaar catalog and the bare grpc-js baseline, so its own cost
 * (one CLIENT span — a no-op here, no tracer provider — and the client metrics) is the same
 * on both sides of the comparison.
 */
import { createClient } from "@bazaar/platform/grpc/client";
import { CatalogService } from "@bazaar/proto/bazaar/catalog/v1/catalog_pb";
import { closedLoop, flags, numberFlag, printResult } from "./common.ts";

const args = flags({ addr: "", id: "", concurrency: "32", warmup: "2", duration: "8", timeout: "10000" });
if (!/^127\.0\.0\.1:\d+$/.test(args.addr)) {
  process.stderr.write(`--addr must be 127.0.0.1:<port>, got ${JSON.stringify(args.addr)}\n`);
  process.exit(2);
}
if (!args.id) {
  process.stderr.write("--id (a product id) is required\n");
  process.exit(2);
}

const client = createClient(CatalogService, args.addr, { defaultTimeoutMs: numberFlag("timeout", args.timeout) });
const id = args.id;

// One checked call first: a wrong answer must fail the run, not be measured.
const first = await client.getProduct({ id });
if (first.product?.id !== id) {
  process.stderr.write(`GetProduct(${id}) answered product ${JSON.stringify(first.product?.id)}\n`);
  process.exit(1);
}

const result = await closedLoop({
  tool: "grpc-js (platform createClient)",
  concurrency: numberFlag("concurrency", args.concurrency),
  warmupS: numberFlag("warmup", args.warmup),
  durationS: numberFlag("duration", args.duration),
  call: async () => {
    await client.getProduct({ id });
  },
});
client.close();
printResult(result);
process.exit(0);
