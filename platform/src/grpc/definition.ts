import { fromBinary, toBinary, type DescMethod, type DescService, type Message } from "@bufbuild/protobuf";
import type { MethodDefinition } from "@grpc/grpc-js";

/**
 * The grpc-js definition of one RPC, built from its protobuf-es descriptor: the path
 * `/<package>.<Service>/<Method>` and binary (de)serializers. This is how Bazaar runs on
 * grpc-js without proto-loader: the generated `*_pb.ts` descriptors are the only schema.
 */
export function methodDefinition(method: DescMethod): MethodDefinition<Message, Message> {
  return {
    path: methodPath(method),
    originalName: method.localName,
    requestStream: method.methodKind === "client_streaming" || method.methodKind === "bidi_streaming",
    responseStream: method.methodKind === "server_streaming" || method.methodKind === "bidi_streaming",
    requestSerialize: (msg: Message) => Buffer.from(toBinary(method.input, msg)),
    requestDeserialize: (bytes: Buffer) => fromBinary(method.input, bytes),
    responseSerialize: (msg: Message) => Buffer.from(toBinary(method.output, msg)),
    responseDeserialize: (bytes: Buffer) => fromBinary(method.output, bytes),
  };
}

/** The HTTP/2 path of an RPC, e.g. `/bazaar.catalog.v1.CatalogService/GetProduct`. */
export function methodPath(method: DescMethod): string {
  return `/${method.parent.typeName}/${method.name}`;
}

/** The grpc-js service definition of a whole protobuf-es service, keyed by method localName. */
export function serviceDefinition(service: DescService): Record<string, MethodDefinition<Message, Message>> {
  return Object.fromEntries(service.methods.map((m) => [m.localName, methodDefinition(m)]));
}
