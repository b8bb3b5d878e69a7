/**
 * HTTP load generator for machines without wrk: `fetch` from Bun with a fixed number of
 * requests in flight (keep-alive connections), a warm-up and a measured window; prints
 * `result {json}` (see common.ts). wrk is preferred: it is far cheaper per request, so the
 * server, not the generator, is what gets measured.
 *
 *   bun scripts/bench/http-load.ts --url http://127.0.0.1:3000/api/products/<id> --concurrency 32 --warmup 2 --duration 8
 */
import { closedLoop, flags, numberFlag, printResult } from "./common.ts";

const args = flags({ url: "", concurrency: "32", warmup: "2", duration: "8" });
if (!args.url.startsWith("http://127.0.0.1:")) {
  process.stderr.write(`--url must be http://127.0.0.1:<port>/…, got ${JSON.stringify(args.url)}\n`);
  process.exit(2);
}

const first = await fetch(args.url);
if (first.status !== 200) {
  process.stderr.write(`GET ${args.url} answered ${first.status}: ${(await first.text()).slice(0, 300)}\n`);
  process.exit(1);
}
await first.arrayBuffer();

const result = await closedLoop({
  tool: `bun fetch (Bun ${Bun.version})`,
  concurrency: numberFlag("concurrency", args.concurrency),
  warmupS: numberFlag("warmup", args.warmup),
  durationS: numberFlag("duration", args.duration),
  call: async () => {
    const res = await fetch(args.url);
    await res.arrayBuffer();
    if (res.status !== 200) throw new Error(`HTTP ${res.status}`);
  },
});
printResult(result);
process.exit(0);
