/**
 * A diagnostic between the bare baselines and the real services: Bazaar's chassis
 * (`startService`: logging, Prometheus metrics, an OpenTelemetry tracer provider with async
 * context; the GrpcServer with its interceptor chain, health and reflection; the platform HTTP
 * app with its telemetry middleware) answering the same fixed GetProduct response and the same
 * fixed JSON body, with no Redis, Postgres or upstream call. The difference to the bare
 * baseline is what the chassis costs; the difference to the catalog / BFF is the work of the
 * handler itself (cache round trip, decoding, validation, the BFF's gRPC call).
 *
 *   BENCH_BODY='{…}' bun scripts/bench/chassis-fixed.ts --grpc-port 0 --http-port 0 --response <base64>
 *
 * Prints `ready <grpc port> <http port>`.
 */
import { fromBinary } from "@bufbuild/protobuf";
import { status } from "@grpc/grpc-js";
import { RpcError } from "@bazaar/platform/errors";
import { createHttpApp } from "@bazaar/platform/http";
import { startService } from "@bazaar/platform/service";
import { catalogAccess } from "../../services/catalog/src/rpc.ts";
import { CatalogService, GetProductResponseSchema } from "@bazaar/proto/bazaar/catalog/v1/catalog_pb";
import { flags } from "./common.ts";

const args = flags({ "grpc-port": "0", "http-port": "0", response: "" });
const fixed = fromBinary(GetProductResponseSchema, Buffer.from(args.response, "base64"));
const body = JSON.parse(process.env.BENCH_BODY ?? "null") as Record<string, unknown> | null;
if (!body) {
  process.stderr.write("BENCH_BODY must hold the JSON object to answer with\n");
  process.exit(2);
}

const host = startService(
  "bench-chassis",
  {
    LOG_LEVEL: "warn",
    SHUTDOWN_DRAIN_MS: 0,
    GRPC_PORT: Number(args["grpc-port"]),
    HTTP_PORT: Number(args["http-port"]),
  },
  { auth: false },
);
const unimplemented = () => {
  throw new RpcError(status.UNIMPLEMENTED, "not part of the benchmark");
};
host.addGrpc(
  CatalogService,
  {
    getProduct: () => fixed,
    listProducts: unimplemented,
    batchGetProducts: unimplemented,
    listCategories: unimplemented,
    createProduct: unimplemented,
    updateProduct: unimplemented,
  },
  catalogAccess,
);
const app = createHttpApp(host.isServing);
app.get("/api/products/:id", (c) => c.json(body));
host.useHttpApp(app);
const { grpcPort, httpPort } = await host.listen();
process.stdout.write(`ready ${grpcPort} ${httpPort}\n`);
