/**
 * The bare grpc-js baseline: a minimal `@grpc/grpc-js` server with CatalogService's
 * definition (built from the protobuf-es descriptor like the platform does) whose GetProduct
 * returns one fixed GetProductResponse, built once. No interceptors, tracing, metrics, cache or
 * validation: only grpc-js plus protobuf-es (de)serialization — the floor under the catalog.
 *
 *   bun scripts/bench/grpc-echo.ts --port 0 --response <base64 of a GetProductResponse>
 *
 * Prints `ready <port>` once bound on 127.0.0.1.
 */
import { fromBinary } from "@bufbuild/protobuf";
import { type sendUnaryData, Server, ServerCredentials, type ServerUnaryCall } from "@grpc/grpc-js";
import { serviceDefinition } from "@bazaar/platform/grpc/definition";
import { CatalogService, GetProductResponseSchema, type GetProductResponse } from "@bazaar/proto/bazaar/catalog/v1/catalog_pb";
import { flags, readyLine } from "./common.ts";

const args = flags({ port: "0", response: "" });
const fixed: GetProductResponse = fromBinary(GetProductResponseSchema, Buffer.from(args.response, "base64"));

const server = new Server();
// Other methods get grpc-js's default UNIMPLEMENTED handler.
server.addService(serviceDefinition(CatalogService), {
  getProduct: (_call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<GetProductResponse>) => callback(null, fixed),
});
const port = await new Promise<number>((resolve, reject) =>
  server.bindAsync(`127.0.0.1:${args.port}`, ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
);
process.stdout.write(`${readyLine(port)}\n`);
for (const signal of ["SIGTERM", "SIGINT"] as const) process.on(signal, () => server.tryShutdown(() => process.exit(0)));
