import { create, type DescFile, type DescMessage, type DescService, type Message, toBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { type ServerDuplexStream, status, type UntypedServiceImplementation } from "@grpc/grpc-js";
import {
  ServerReflection as ServerReflectionV1,
  ServerReflectionResponseSchema as ResponseV1,
  type ServerReflectionRequest,
} from "@bazaar/proto/grpc/reflection/v1/reflection_pb";
import {
  ServerReflection as ServerReflectionV1Alpha,
  ServerReflectionResponseSchema as ResponseV1Alpha,
} from "@bazaar/proto/grpc/reflection/v1alpha/reflection_pb";

/** The reflection services (v1 and the older v1alpha that many grpcurl builds still ask for). */
export const reflectionServices: readonly DescService[] = [ServerReflectionV1, ServerReflectionV1Alpha];

/**
 * gRPC server reflection from protobuf-es descriptors: `grpcurl list`, `describe` and calls
 * work with no .proto files at hand. Files are answered with their transitive dependencies.
 */
export class ReflectionIndex {
  private readonly files = new Map<string, DescFile>();
  private readonly symbols = new Map<string, DescFile>();
  private readonly serviceNames: string[];

  constructor(services: readonly DescService[]) {
    this.serviceNames = services.map((s) => s.typeName).sort();
    for (const s of services) this.addFile(s.file);
  }

  private addFile(file: DescFile): void {
    if (this.files.has(file.proto.name)) return;
    this.files.set(file.proto.name, file);
    for (const dep of file.dependencies) this.addFile(dep);
    const addMessage = (m: DescMessage) => {
      this.symbols.set(m.typeName, file);
      m.nestedMessages.forEach(addMessage);
      for (const e of m.nestedEnums) this.symbols.set(e.typeName, file);
      for (const x of m.nestedExtensions) this.symbols.set(x.typeName, file);
    };
    file.messages.forEach(addMessage);
    for (const e of file.enums) this.symbols.set(e.typeName, file);
    for (const x of file.extensions) this.symbols.set(x.typeName, file);
    for (const s of file.services) {
      this.symbols.set(s.typeName, file);
      for (const m of s.methods) this.symbols.set(`${s.typeName}.${m.name}`, file);
    }
  }

  /** A file and everything it imports, each serialized as a FileDescriptorProto. */
  private withDependencies(file: DescFile): Uint8Array[] {
    const out: Uint8Array[] = [];
    const seen = new Set<string>();
    const visit = (f: DescFile) => {
      if (seen.has(f.proto.name)) return;
      seen.add(f.proto.name);
      out.push(toBinary(FileDescriptorProtoSchema, f.proto));
      f.dependencies.forEach(visit);
    };
    visit(file);
    return out;
  }

  /** The answer to one reflection request, as a response init object (same shape in v1 and v1alpha). */
  answer(req: ServerReflectionRequest) {
    const base = { validHost: req.host, originalRequest: req };
    const notFound = (what: string) => ({
      ...base,
      messageResponse: { case: "errorResponse" as const, value: { errorCode: status.NOT_FOUND, errorMessage: `${what} not found` } },
    });
    const files = (file: DescFile | undefined, what: string) =>
      file
        ? { ...base, messageResponse: { case: "fileDescriptorResponse" as const, value: { fileDescriptorProto: this.withDependencies(file) } } }
        : notFound(what);
    const r = req.messageRequest;
    switch (r.case) {
      case "listServices":
        return {
          ...base,
          messageResponse: { case: "listServicesResponse" as const, value: { service: this.serviceNames.map((name) => ({ name })) } },
        };
      case "fileByFilename":
        return files(this.files.get(r.value), `file ${r.value}`);
      case "fileContainingSymbol":
        return files(this.symbols.get(r.value.replace(/^\./, "")), `symbol ${r.value}`);
      case "fileContainingExtension":
        return notFound(`extension ${r.value.extensionNumber} of ${r.value.containingType}`);
      case "allExtensionNumbersOfType":
        return this.symbols.has(r.value)
          ? { ...base, messageResponse: { case: "allExtensionNumbersResponse" as const, value: { baseTypeName: r.value, extensionNumber: [] } } }
          : notFound(`type ${r.value}`);
      default:
        return {
          ...base,
          messageResponse: {
            case: "errorResponse" as const,
            value: { errorCode: status.INVALID_ARGUMENT, errorMessage: "the request names no known reflection query" },
          },
        };
    }
  }

  /** grpc-js implementations of ServerReflectionInfo for v1 and v1alpha. */
  implementations(): [DescService, UntypedServiceImplementation][] {
    const serve = (schema: typeof ResponseV1 | typeof ResponseV1Alpha): UntypedServiceImplementation => ({
      serverReflectionInfo: (call: ServerDuplexStream<ServerReflectionRequest, Message>) => {
        call.on("data", (req: ServerReflectionRequest) => call.write(create(schema as typeof ResponseV1, this.answer(req))));
        call.on("end", () => call.end());
      },
    });
    return [
      [ServerReflectionV1, serve(ResponseV1)],
      [ServerReflectionV1Alpha, serve(ResponseV1Alpha)],
    ];
  }
}
