/**
 * The chassis's gRPC wire protocol (server, health, reflection), checked by a strict client that
 * is not grpc-js against a real catalog process as the subject.
 *
 * Bun's HTTP/2 server has been reported to drop gRPC trailers; grpc-js clients tolerate some
 * such mistakes, but strict peers (Envoy, gRPC C-core) do not. So this test runs
 * `strict-grpc-client.py` with Debian's /usr/bin/python3 and python3-grpcio (gRPC C-core, which
 * only reports status OK when the trailers carrying grpc-status arrived) against a real catalog
 * process, plus a raw HTTP/2 frame-level look at one call, and asserts on the JSON it prints.
 *
 * Needs: apt-get install python3-grpcio python3-protobuf (for /usr/bin/python3, not a pyenv one).
 * STRICT_GRPC_PYTHON overrides the interpreter.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { type LaunchedProcess, launchProcess } from "@bazaar/testkit/fixtures";

const python = process.env.STRICT_GRPC_PYTHON ?? "/usr/bin/python3";
const clientScript = `${import.meta.dir}/strict-grpc-client.py`;
const installHint =
  `the strict gRPC protocol test needs gRPC C-core for ${python}: ` +
  "install python3-grpcio python3-protobuf (sudo apt-get install python3-grpcio python3-protobuf)";

const catalogService = "bazaar.catalog.v1.CatalogService";
const catalogFile = "bazaar/catalog/v1/catalog.proto";
const expectedServices = [
  "bazaar.catalog.v1.CatalogService",
  "grpc.health.v1.Health",
  "grpc.reflection.v1.ServerReflection",
  "grpc.reflection.v1alpha.ServerReflection",
];
/** bunfig's test timeout does not cover hooks (they stop at 5 s); starting and stopping a process may take longer. */
const hookTimeoutMs = 60_000;
const SERVING = 1;
const NOT_FOUND = 5;

/** A section of the client's report; `exception` is set when the check itself crashed. */
type Section = Record<string, unknown> & { exception?: string; traceback?: string };
interface CallResult extends Section {
  code: string;
  code_number: number;
  details: string;
  trailing_metadata_present: boolean;
  trailing_metadata_keys: string[];
}
interface FileSummary {
  name: string;
  package: string;
  dependencies: string[];
  services: Record<string, string[]>;
  messages: string[];
}
interface ReflectionAnswer {
  kind: "list_services" | "file_descriptor" | "error" | "unknown";
  original_request_fields?: number[];
  services?: string[];
  files?: FileSummary[];
  error_code?: number;
  error_message?: string;
}
interface ReflectionResult extends Section {
  code: string;
  response_count: number;
  list_services?: ReflectionAnswer;
  file_containing_symbol?: ReflectionAnswer;
  file_by_unknown_filename?: ReflectionAnswer;
}
interface RawH2Result extends Section {
  sequence: string[];
  ends_with_trailers: boolean;
  data_ends_stream: boolean;
  rst_stream: boolean;
  grpc_messages: { compressed: number; length: number; complete: boolean; products?: number }[];
  trailing_bytes: number;
}
interface Report {
  fatal?: string;
  client: { python: string; grpcio: string; protobuf: string };
  reflection_v1: ReflectionResult;
  reflection_v1alpha: ReflectionResult;
  list_products: CallResult & {
    response_bytes: number | null;
    hand_decoded_products: number;
    decoded: boolean;
    products: number;
    total_size: number;
    products_complete: boolean;
    hand_encoded_request_matches: boolean;
    reencodes_identically: boolean;
  };
  list_products_negative_page_size: CallResult & {
    status_details: {
      code: number;
      message: string;
      details: { type_url: string; field_violations?: { field: string; description: string }[] }[];
    } | null;
  };
  get_product_missing: CallResult;
  health_overall: CallResult & { serving_status: number | null };
  health_catalog: CallResult & { serving_status: number | null };
  health_unknown: CallResult & { serving_status: number | null };
  raw_h2_ok: RawH2Result;
  raw_h2_error: RawH2Result;
}

/** Why /usr/bin/python3 cannot run the strict client, or undefined when it can. */
async function pythonProblem(): Promise<string | undefined> {
  try {
    const proc = Bun.spawn([python, "-c", "import grpc, google.protobuf"], { stdout: "pipe", stderr: "pipe" });
    const [code, stderr] = await Promise.all([proc.exited, new Response(proc.stderr).text()]);
    if (code === 0) return undefined;
    return `${installHint}\n(${python} -c "import grpc, google.protobuf" exited ${code}: ${stderr.trim().split("\n").at(-1)})`;
  } catch (err) {
    return `${installHint}\n(cannot run ${python}: ${(err as Error).message})`;
  }
}

/** Runs the strict client against `address` and parses what it reports. */
async function runStrictClient(address: string): Promise<Report> {
  const proc = Bun.spawn([python, clientScript, address], { stdout: "pipe", stderr: "pipe" });
  const timer = setTimeout(() => proc.kill("SIGKILL"), 45_000);
  const [code, stdout, stderr] = await Promise.all([proc.exited, new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
  clearTimeout(timer);
  let report: Report;
  try {
    report = JSON.parse(stdout) as Report;
  } catch {
    throw new Error(`the strict client printed no JSON (exit ${code}):\n${stdout}\n${stderr}`);
  }
  if (report.fatal === "missing_modules") throw new Error(`${installHint}\n(${JSON.stringify(report)})`);
  if (code !== 0) throw new Error(`the strict client exited ${code}:\n${stderr}`);
  return report;
}

let server: LaunchedProcess | undefined;
let report: Report | undefined;
let setupError: Error | undefined;

beforeAll(async () => {
  const problem = await pythonProblem();
  if (problem) {
    setupError = new Error(problem);
    return;
  }
  try {
    server = await launchProcess("catalog");
    report = await runStrictClient(server.grpcAddress);
  } catch (err) {
    setupError = err as Error;
  }
}, hookTimeoutMs);

afterAll(async () => {
  await server?.cleanup();
}, hookTimeoutMs);

/** One section of the report; fails with the setup error or the client's traceback if there is one. */
function section<K extends Exclude<keyof Report, "fatal" | "client">>(name: K): Report[K] {
  if (setupError) throw setupError;
  if (!report) throw new Error("the strict client produced no report");
  const s = report[name];
  if (!s) throw new Error(`the strict client's report has no ${name}`);
  if (s.exception) throw new Error(`the strict client's ${name} check crashed: ${s.exception}\n${s.traceback ?? ""}`);
  return s;
}

test(`${python} has gRPC C-core (python3-grpcio) and python3-protobuf`, async () => {
  const problem = await pythonProblem();
  if (problem) throw new Error(problem);
});

for (const version of ["v1", "v1alpha"] as const) {
  const name = `reflection_${version}` as const;

  describe(`server reflection ${version} (grpc.reflection.${version}.ServerReflection/ServerReflectionInfo)`, () => {
    test("the bidi stream answers each of three requests, echoing it, and ends with status OK", () => {
      const r = section(name);
      expect(r.code).toBe("OK");
      expect(r.response_count).toBe(3);
      expect(r.list_services?.original_request_fields).toContain(7);
      expect(r.file_containing_symbol?.original_request_fields).toContain(4);
      expect(r.file_by_unknown_filename?.original_request_fields).toContain(3);
    });

    test("list_services names exactly the catalog, health and both reflection services", () => {
      const answer = section(name).list_services;
      expect(answer?.kind).toBe("list_services");
      expect([...(answer?.services ?? [])].sort()).toEqual(expectedServices);
    });

    test(`file_containing_symbol ${catalogService} returns ${catalogFile} declaring CatalogService.ListProducts`, () => {
      const answer = section(name).file_containing_symbol;
      expect(answer?.kind).toBe("file_descriptor");
      // The file that defines the symbol comes first, then its dependencies.
      const file = answer?.files?.[0];
      expect(file?.name).toBe(catalogFile);
      expect(file?.package).toBe("bazaar.catalog.v1");
      expect(Object.keys(file?.services ?? {})).toEqual(["CatalogService"]);
      expect(file?.services.CatalogService).toEqual(["ListProducts", "GetProduct", "BatchGetProducts", "ListCategories", "CreateProduct", "UpdateProduct"]);
      expect(file?.messages).toContain("ListProductsRequest");
      expect(file?.messages).toContain("ListProductsResponse");
    });

    test("file_containing_symbol also returns the file's dependencies (money, field_mask and timestamp)", () => {
      const files = section(name).file_containing_symbol?.files ?? [];
      const catalog = files.find((f) => f.name === catalogFile);
      expect(catalog?.dependencies).toEqual(["bazaar/common/v1/money.proto", "google/protobuf/field_mask.proto", "google/protobuf/timestamp.proto"]);
      expect(files.map((f) => f.name).sort()).toEqual([
        catalogFile,
        "bazaar/common/v1/money.proto",
        "google/protobuf/field_mask.proto",
        "google/protobuf/timestamp.proto",
      ]);
      expect(files.find((f) => f.name === "bazaar/common/v1/money.proto")?.messages).toEqual(["Money"]);
      expect(files.find((f) => f.name === "google/protobuf/timestamp.proto")?.messages).toEqual(["Timestamp"]);
    });

    test("file_by_filename of an unknown file is an error_response with code 5 (NOT_FOUND)", () => {
      const answer = section(name).file_by_unknown_filename;
      expect(answer?.kind).toBe("error");
      expect(answer?.error_code).toBe(NOT_FOUND);
      expect(answer?.error_message).toContain("no/such/file.proto");
    });
  });
}

describe("CatalogService/ListProducts(page_size=5) through gRPC C-core", () => {
  test("ends with status OK (C-core reports OK only when the grpc-status trailers arrived)", () => {
    const r = section("list_products");
    expect(r.code).toBe("OK");
    expect(r.code_number).toBe(0);
  });

  test("the call's trailing metadata arrived (status OK comes from the trailers, and call.trailing_metadata() is returned)", () => {
    const r = section("list_products");
    // Without trailers C-core ends the call UNKNOWN "Stream removed"; trailing_metadata() is () either way.
    expect(r.code).toBe("OK");
    expect(r.trailing_metadata_present).toBe(true);
    // C-core consumes grpc-status/grpc-message itself; whatever else the server sends is listed.
    expect(Array.isArray(r.trailing_metadata_keys)).toBe(true);
    expect(r.trailing_metadata_keys).not.toContain("grpc-status");
  });

  test("the response holds 5 products and decodes with the schema served by reflection", () => {
    const r = section("list_products");
    expect(r.response_bytes).toBeGreaterThan(0);
    expect(r.hand_decoded_products).toBe(5);
    expect(r.decoded).toBe(true);
    expect(r.products).toBe(5);
    expect(r.total_size).toBe(72);
    expect(r.products_complete).toBe(true);
    expect(r.reencodes_identically).toBe(true);
  });

  test("the hand-encoded request equals what a protobuf encoder produces", () => {
    expect(section("list_products").hand_encoded_request_matches).toBe(true);
  });
});

describe("status codes through gRPC C-core", () => {
  test("ListProducts(page_size=-1) is INVALID_ARGUMENT with details naming page_size", () => {
    const r = section("list_products_negative_page_size");
    expect(r.code).toBe("INVALID_ARGUMENT");
    expect(r.code_number).toBe(3);
    expect(r.details).toContain("page_size");
  });

  test("ListProducts(page_size=-1) ends with a grpc-status-details-bin trailer: a google.rpc.Status with a BadRequest naming page_size", () => {
    const r = section("list_products_negative_page_size");
    expect(r.trailing_metadata_keys).toContain("grpc-status-details-bin");
    expect(r.status_details).toEqual({
      code: 3,
      message: r.details,
      details: [
        {
          type_url: "type.googleapis.com/google.rpc.BadRequest",
          field_violations: [{ field: "page_size", description: "must be between 1 and 100 (0 means 20), got -1" }],
        },
      ],
    });
  });

  test("GetProduct of an id no product has is NOT_FOUND", () => {
    const r = section("get_product_missing");
    expect(r.code).toBe("NOT_FOUND");
    expect(r.details).toContain("00000000-0000-0000-0000-000000000000");
  });
});

describe("grpc.health.v1.Health/Check through gRPC C-core", () => {
  test('Check("") is SERVING (1)', () => {
    const r = section("health_overall");
    expect(r.code).toBe("OK");
    expect(r.serving_status).toBe(SERVING);
  });

  test(`Check("${catalogService}") is SERVING (1)`, () => {
    const r = section("health_catalog");
    expect(r.code).toBe("OK");
    expect(r.serving_status).toBe(SERVING);
  });

  test('Check("no.such.Service") fails with status NOT_FOUND', () => {
    const r = section("health_unknown");
    expect(r.code).toBe("NOT_FOUND");
    expect(r.serving_status).toBeNull();
  });
});

describe("raw HTTP/2 frames of a call", () => {
  test("a successful call is HEADERS, DATA, then trailers (HEADERS with END_STREAM)", () => {
    const r = section("raw_h2_ok");
    // Response headers, the message in one or more DATA frames, then the trailers.
    expect(r.sequence[0]).toBe("HEADERS");
    expect(r.sequence.at(-1)).toBe("HEADERS+END_STREAM");
    expect(r.sequence.slice(1, -1).length).toBeGreaterThan(0);
    expect(new Set(r.sequence.slice(1, -1))).toEqual(new Set(["DATA"]));
    expect(r.ends_with_trailers).toBe(true);
    expect(r.data_ends_stream).toBe(false);
    expect(r.rst_stream).toBe(false);
    expect(r.grpc_messages).toEqual([{ compressed: 0, length: expect.any(Number), complete: true, products: 5 }]);
    expect(r.trailing_bytes).toBe(0);
  });

  test("a failed call still ends its stream with a HEADERS frame (trailers), never DATA or RST_STREAM", () => {
    const r = section("raw_h2_error");
    expect(r.ends_with_trailers).toBe(true);
    expect(r.data_ends_stream).toBe(false);
    expect(r.rst_stream).toBe(false);
    expect(r.grpc_messages).toEqual([]);
  });
});
