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

/**
 * A request that did not decode as its message type. A server definition's deserializer
 * returns it instead of throwing, because grpc-js answers a throwing deserializer with
 * INTERNAL, which blames the server for the caller's bytes; the server answers it with
 * INVALID_ARGUMENT instead.
 */
export class MalformedRequest {
  constructor(
    /** The message type the bytes should have been, e.g. `grpc.health.v1.HealthCheckRequest`. */
    readonly typeName: string,
    /** What the decoder said. */
    readonly reason: string,
  ) {}

  /** The status details: what was wrong, for the caller. */
  get message(): string {
    return `the request is not a valid ${this.typeName} (${this.reason})`;
  }
}

/**
 * Decodes a request on the server: unknown fields are skipped, not kept (a server reads the
 * fields it knows; keeping a message's worth of unknown ones doubles the cost of garbage), and
 * bytes that do not decode are a {@link MalformedRequest}.
 */
export function decodeRequest(method: DescMethod, bytes: Uint8Array): Message | MalformedRequest {
  try {
    return fromBinary(method.input, bytes, { readUnknownFields: false });
  } catch (err) {
    return new MalformedRequest(method.input.typeName, (err as Error).message);
  }
}

/**
 * The grpc-js definition of a protobuf-es service's server side, keyed by method localName. With `requests: "raw"` grpc-js hands the handler the
 * request's bytes (a Buffer) undecoded, so the server can check the caller before it spends
 * CPU on the body; with "decoded", the handler gets the message or a {@link MalformedRequest}.
 */
export function serverServiceDefinition(service: DescService, requests: "raw" | "decoded"): Record<string, MethodDefinition<Message, Message>> {
  return Object.fromEntries(
    service.methods.map((m) => {
      const requestDeserialize = requests === "raw" ? (bytes: Buffer) => bytes : (bytes: Buffer) => decodeRequest(m, bytes);
      return [m.localName, { ...methodDefinition(m), requestDeserialize } as MethodDefinition<Message, Message>];
    }),
  );
}
