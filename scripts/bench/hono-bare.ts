/**
 * The bare HTTP baseline: `new Hono().get("/api/products/:id", c => c.json(fixedBody))` on
 * Bun.serve, with the same JSON body the BFF answers (serialized per request, as the BFF
 * does). No middleware, validation or upstream call.
 *
 *   BENCH_BODY='{"product":{…}}' bun scripts/bench/hono-bare.ts --port 0
 *
 * Prints `ready <port>` once listening on 127.0.0.1.
 */
import { Hono } from "hono";
import { flags, readyLine } from "./common.ts";

const args = flags({ port: "0" });
const body = JSON.parse(process.env.BENCH_BODY ?? "null") as unknown;
if (body === null || typeof body !== "object") {
  process.stderr.write("BENCH_BODY must hold the JSON object to answer with\n");
  process.exit(2);
}
const fixedBody = body as Record<string, unknown>;

const app = new Hono().get("/api/products/:id", (c) => c.json(fixedBody));
const server = Bun.serve({ hostname: "127.0.0.1", port: Number(args.port), fetch: app.fetch });
process.stdout.write(`${readyLine(server.port ?? 0)}\n`);
for (const signal of ["SIGTERM", "SIGINT"] as const) {
  process.on(signal, () => {
    void server.stop(true);
    process.exit(0);
  });
}
