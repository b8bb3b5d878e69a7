/**
 * The bare HTTP baseline: `new Hono().get("/api/products/:id", c => c.json(fixedBody))` on
 * Bun.serve, with the same JSON body the BFF answers (serialized per request, as the BFF
 * does). No middleware, validation or upstream call.
 *
 *   BENCH_BODY='{"product":{…}}' bun scripts/bench/hono-bare.ts --port 0
 *
 * With `--fanout 127.0.0.1:<port> --calls N` it is the bare fan-out baseline instead: each
 * request first makes N parallel GetProduct calls with a plain grpc-js client (no interceptors,
 * spans or metrics) to the bare echo server, as the BFF's product page makes its upstream
 * calls, then answers the same body.
 *
 * Prints `ready <port>` once listening on 127.0.0.1.
 */
import { create } from "@bufbuild/protobuf";
import { Client, credentials } from "@grpc/grpc-js";
import { Hono } from "hono";
import { methodDefinition } from "@bazaar/platform/grpc/definition";
import { CatalogService, GetProductRequestSchema } from "@bazaar/proto/bazaar/catalog/v1/catalog_pb";
import { flags, readyLine } from "./common.ts";

const args = flags({ port: "0", fanout: "", calls: "2" });
const body = JSON.parse(process.env.BENCH_BODY ?? "null") as unknown;
if (body === null || typeof body !== "object") {
  process.stderr.write("BENCH_BODY must hold the JSON object to answer with\n");
  process.exit(2);
}
const fixedBody = body as Record<string, unknown>;

const upstream = args.fanout ? new Client(args.fanout, credentials.createInsecure()) : undefined;
const getProduct = methodDefinition(CatalogService.method.getProduct);
const calls = Number(args.calls);
const callEcho = (id: string) =>
  new Promise<void>((resolve, reject) => {
    upstream!.makeUnaryRequest(
      getProduct.path,
      getProduct.requestSerialize,
      getProduct.responseDeserialize,
      create(GetProductRequestSchema, { id }),
      { deadline: Date.now() + 2_000 },
      (err) => (err ? reject(err) : resolve()),
    );
  });

const app = new Hono().get("/api/products/:id", async (c) => {
  if (upstream) await Promise.all(Array.from({ length: calls }, () => callEcho(c.req.param("id"))));
  return c.json(fixedBody);
});
const server = Bun.serve({ hostname: "127.0.0.1", port: Number(args.port), fetch: app.fetch });
process.stdout.write(`${readyLine(server.port ?? 0)}\n`);
for (const signal of ["SIGTERM", "SIGINT"] as const) {
  process.on(signal, () => {
    void server.stop(true);
    process.exit(0);
  });
}
