/**
 * A strict checker for Envoy v3 bootstrap configs (`gateway/envoy.yaml`), driven by Envoy's
 * own API protos rather than a hand-written schema.
 *
 * Envoy types the YAML scalars itself, feeds the result to protobuf's JSON parser (unknown
 * fields are errors, also inside every `Any`), then runs the protoc-gen-validate (PGV) rules
 * declared in the protos and looks for deprecated fields. A config that only fails at Envoy's
 * start-up is a config that broke in production once already (see STYLE.md, "Config files are
 * code"), so this walks the config against the real descriptors and reports every problem.
 *
 * What is an error: everything Envoy would refuse (unknown fields and types, wrong value types,
 * undefined enum values, two members of a oneof, PGV violations including required fields and
 * oneofs), plus a few things Envoy lets through that a reviewed config should not lean on:
 * deprecated fields and enum values (Envoy only warns unless they are disallowed by default),
 * enum names in the wrong case, a lone value where a list belongs, a quoted boolean, and the
 * same field under both its names. Semantic checks Envoy makes in C++ (a route naming a cluster
 * that exists, for instance) are out of scope: only the API's declared shape and rules are.
 *
 * The protos come from the `@grpc/grpc-js-xds` package, which vendors Envoy's API
 * (`deps/envoy-api`), the xDS/UDPA annotations (`deps/xds`), PGV (`deps/protoc-gen-validate`)
 * and googleapis; protobufjs parses them and keeps field, oneof and enum-value options.
 *
 * CLI: `bun gateway/check/envoy-strict.ts <file.yaml>` prints the errors and exits 1, or
 * prints a one-line summary and exits 0.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { Enum, MapField, Root, Type, parse, type Field, type Namespace, type OneOf, type ReflectionObject } from "protobufjs";
import { isAlias, isMap, isScalar, isSeq, parseDocument, visit } from "yaml";

/** What {@link checkEnvoyConfig} found. */
export interface EnvoyCheckResult {
  /** One line per problem: a JSON-path-like location, a colon, and what is wrong. */
  errors: string[];
  /** Every distinct protobuf message type the walk visited, sorted. */
  messageTypes: string[];
  /** Every distinct type URL resolved from an `Any` (`@type`) or a TypedStruct, sorted. */
  typedConfigs: string[];
}

/** A vendored proto file that could not be loaded, and why. */
export interface SkippedProto {
  /** Path relative to its include directory, e.g. `envoy/config/trace/v3/opencensus.proto`. */
  file: string;
  /** The first import (direct or transitive) that no include directory provides. */
  missingImport: string;
  /** Full names of the messages the file declares, so a type URL naming one gets a precise error. */
  types: string[];
}

/** Envoy's API protos, loaded once per process. */
export interface EnvoyProtos {
  root: Root;
  /** Number of proto files loaded (Envoy, xDS/UDPA and their imports). */
  files: number;
  /** Files left out because an import they need is not shipped with @grpc/grpc-js-xds. */
  skipped: SkippedProto[];
  /** Wall-clock time the load took. */
  loadMillis: number;
}

const TYPE_URL_PREFIX = "type.googleapis.com/";

/** Both TypedStruct flavours Envoy unpacks in place of the message named by their `type_url`. */
const TYPED_STRUCTS = new Set(["udpa.type.v1.TypedStruct", "xds.type.v3.TypedStruct"]);

/** Wrapper types, written in JSON as the bare scalar they wrap. */
const WRAPPERS: Record<string, ScalarKind> = {
  "google.protobuf.DoubleValue": "double",
  "google.protobuf.FloatValue": "float",
  "google.protobuf.Int64Value": "int64",
  "google.protobuf.UInt64Value": "uint64",
  "google.protobuf.Int32Value": "int32",
  "google.protobuf.UInt32Value": "uint32",
  "google.protobuf.BoolValue": "bool",
  "google.protobuf.StringValue": "string",
  "google.protobuf.BytesValue": "bytes",
};
/** Special-form well-known types whose plain message form (an object of fields) is also accepted. */
const MESSAGE_FORM_ACCEPTED = new Set(["google.protobuf.Timestamp", "google.protobuf.FieldMask", "google.protobuf.ListValue"]);
/** Well-known types whose JSON form is not an object of fields; inside an Any it sits under "value". */
const SPECIAL_JSON = new Set([
  ...Object.keys(WRAPPERS),
  "google.protobuf.Any",
  "google.protobuf.Duration",
  "google.protobuf.Timestamp",
  "google.protobuf.FieldMask",
  "google.protobuf.Struct",
  "google.protobuf.Value",
  "google.protobuf.ListValue",
]);

// ---------------------------------------------------------------------------------------------
// Loading the protos
// ---------------------------------------------------------------------------------------------

let cached: LoadedProtos | undefined;

/**
 * Loads every proto under Envoy's `envoy/` tree and the xDS `xds/` and `udpa/` trees (not only
 * what bootstrap.proto imports: a typed_config can name any extension), once per process.
 *
 * The vendored tree is a snapshot that still carries the frozen v2-era packages, whose imports
 * (`envoy/api/v2/...`) are not shipped, and a few v3 files that import OpenTelemetry,
 * OpenCensus or Prometheus protos that are not shipped either. Those files are left out and
 * listed in `skipped`; protobufjs would otherwise fail the whole root on their unresolvable
 * types.
 */
export function loadEnvoyProtos(): EnvoyProtos {
  return loadProtos();
}

function loadProtos(): LoadedProtos {
  if (cached) return cached;
  const started = performance.now();
  const tree = protoTree();
  const wanted = [
    ...listProtos(join(tree.deps, "envoy-api"), "envoy"),
    ...listProtos(join(tree.deps, "xds"), "xds"),
    ...listProtos(join(tree.deps, "xds"), "udpa"),
  ];
  const { loadable, skipped } = partitionByImports(tree, wanted);

  const root = new Root();
  root.resolvePath = (_origin, target) => tree.locate(target) ?? target;
  try {
    // keepCase: field names stay as in the .proto (snake_case); json names are derived here.
    root.loadSync(loadable, { keepCase: true });
  } catch (error) {
    throw new Error(`could not load Envoy's API protos from ${tree.deps}: ${(error as Error).message}`);
  }

  cached = {
    root,
    files: root.files.length,
    skipped,
    loadMillis: performance.now() - started,
    frozenFiles: new Set(loadable.filter((file) => /package_version_status\s*=\s*FROZEN/.test(tree.read(file) ?? "")).map((file) => tree.locate(file)!)),
    skippedTypes: new Map(skipped.flatMap((entry) => entry.types.map((name) => [name, entry] as const))),
  };
  return cached;
}

/** The vendored proto trees: where a file named by an import lives, and its text (read once). */
interface ProtoTree {
  /** `@grpc/grpc-js-xds`'s `deps` folder. */
  deps: string;
  locate(file: string): string | undefined;
  read(file: string): string | undefined;
}

function protoTree(): ProtoTree {
  const require = createRequire(import.meta.url);
  const deps = join(dirname(require.resolve("@grpc/grpc-js-xds/package.json")), "deps");
  // protobufjs bundles the well-known types (any, duration, struct...) in code, and ships
  // descriptor.proto as a file, which validate.proto and the annotations extend.
  const protobufjsDir = dirname(require.resolve("protobufjs/package.json"));
  const includeDirs = [join(deps, "envoy-api"), join(deps, "xds"), join(deps, "protoc-gen-validate"), join(deps, "googleapis"), protobufjsDir];
  const locate = (file: string): string | undefined => {
    for (const dir of includeDirs) {
      const candidate = join(dir, file);
      if (existsSync(candidate)) return candidate;
    }
    return undefined;
  };
  const sources = new Map<string, string | undefined>();
  const read = (file: string): string | undefined => {
    if (!sources.has(file)) {
      const path = locate(file);
      sources.set(file, path ? readFileSync(path, "utf8") : undefined);
    }
    return sources.get(file);
  };
  return { deps, locate, read };
}

/**
 * Splits `wanted` into the files whose imports (followed transitively) the tree provides, and
 * the rest, each with the first import that is missing and the message names it declares.
 */
function partitionByImports(tree: ProtoTree, wanted: string[]): { loadable: string[]; skipped: SkippedProto[] } {
  const missing = new Map<string, string | null>();
  const findMissing = (file: string, visiting: Set<string>): string | null => {
    const known = missing.get(file);
    if (known !== undefined) return known;
    if (visiting.has(file) || protobufjsBundles(file)) return null;
    const source = tree.read(file);
    if (source === undefined) return file;
    visiting.add(file);
    let result: string | null = null;
    for (const match of source.matchAll(/^\s*import\s+(?:public\s+|weak\s+)?"([^"]+)"\s*;/gm)) {
      result = findMissing(match[1]!, visiting);
      if (result) break;
    }
    missing.set(file, result);
    return result;
  };

  const loadable: string[] = [];
  const skipped: SkippedProto[] = [];
  for (const file of wanted) {
    const missingImport = findMissing(file, new Set());
    if (!missingImport) {
      loadable.push(file);
      continue;
    }
    // Parse on its own (no import resolution needed) just to learn the type names it declares.
    let types: string[] = [];
    try {
      types = messageNames(parse(tree.read(file) ?? "", new Root(), { keepCase: true }).root);
    } catch {
      // Names are only used to word an error better; an unparsable file still gets listed.
    }
    skipped.push({ file, missingImport, types });
  }
  return { loadable, skipped };
}

/** What the walk needs beyond the public {@link EnvoyProtos}. */
interface LoadedProtos extends EnvoyProtos {
  /** Absolute paths of files whose package is FROZEN (v2-era): Envoy v3 has no extensions for their types. */
  frozenFiles: Set<string>;
  /** Message names declared by skipped files, for a precise "could not check" error. */
  skippedTypes: Map<string, SkippedProto>;
}

function protobufjsBundles(file: string): boolean {
  // protobufjs serves these from definitions bundled in its code (src/common.js), not from files.
  return /^google\/protobuf\/(any|duration|empty|field_mask|struct|timestamp|wrappers)\.proto$/.test(file);
}

function listProtos(base: string, dir: string): string[] {
  const out: string[] = [];
  const walk = (relative: string) => {
    for (const entry of readdirSync(join(base, relative), { withFileTypes: true })) {
      const path = `${relative}/${entry.name}`;
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith(".proto")) out.push(path);
    }
  };
  if (existsSync(join(base, dir))) walk(dir);
  return out.sort();
}

function messageNames(namespace: Namespace): string[] {
  const names: string[] = [];
  for (const nested of namespace.nestedArray) {
    if (nested instanceof Type) names.push(fullName(nested));
    if ("nestedArray" in nested) names.push(...messageNames(nested as Namespace));
  }
  return names;
}

function fullName(object: ReflectionObject): string {
  return object.fullName.replace(/^\./, "");
}

// ---------------------------------------------------------------------------------------------
// Per-descriptor lookups (cached: the same types are visited many times)
// ---------------------------------------------------------------------------------------------

/** The field's json_name: explicit, or protoc's default (drop underscores, upper-case the next letter). */
function jsonName(field: Field): string {
  const explicit = field.options?.json_name;
  if (typeof explicit === "string") return explicit;
  let name = "";
  let upperNext = false;
  for (const char of field.name) {
    if (char === "_") upperNext = true;
    else {
      name += upperNext ? char.toUpperCase() : char;
      upperNext = false;
    }
  }
  return name;
}

const fieldIndexes = new WeakMap<Type, Map<string, Field>>();
/** Both spellings Envoy's JSON parser accepts: the proto name and the json_name. */
function fieldIndex(type: Type): Map<string, Field> {
  let index = fieldIndexes.get(type);
  if (!index) {
    index = new Map();
    for (const field of type.fieldsArray) {
      index.set(field.name, field);
      index.set(jsonName(field), field);
    }
    fieldIndexes.set(type, index);
  }
  return index;
}

/** PGV rules of one field or list item, e.g. `{ string: { min_len: 1 } }` or `{ repeated: {...} }`. */
// biome-ignore lint/suspicious/noExplicitAny: PGV options arrive as protobufjs plain objects whose shape depends on the rule kind.
type Rules = Record<string, any>;

const fieldRules = new WeakMap<Field, Rules>();
/**
 * The field's `(validate.rules)`, taken from protobufjs's `parsedOptions`: the flattened
 * `options` map keeps only the last element of a list (`string.in`) and drops empty
 * messages (`duration.lte = {}`), both of which PGV gives meaning to.
 */
function rulesOf(field: Field): Rules {
  let rules = fieldRules.get(field);
  if (!rules) {
    rules = {};
    const parsed = (field as { parsedOptions?: Record<string, unknown>[] | null }).parsedOptions ?? [];
    for (const option of parsed) {
      if (option["(validate.rules)"]) rules = deepMerge(rules, option["(validate.rules)"] as Rules);
    }
    fieldRules.set(field, rules);
  }
  return rules;
}

function deepMerge(a: Rules, b: Rules): Rules {
  const out: Rules = { ...a };
  for (const [key, value] of Object.entries(b)) {
    out[key] = isPlainObject(value) && isPlainObject(out[key]) ? deepMerge(out[key], value) : value;
  }
  return out;
}

/** google.protobuf.Value is the one type whose JSON null is a value (NULL_VALUE) rather than "unset". */
function holdsValue(field: Field): boolean {
  return field.resolvedType?.fullName === ".google.protobuf.Value";
}

/** A oneof protobufjs synthesises for a proto3 `optional` field is not a real choice. */
function isRealOneof(oneof: OneOf): boolean {
  return !(oneof.fieldsArray.length === 1 && oneof.fieldsArray[0]!.options?.proto3_optional === true);
}

/**
 * Why a field or enum value counts as deprecated, or undefined. Envoy itself only warns about a
 * plain `deprecated = true` (and counts it in `runtime.deprecated_feature_use`) but refuses one
 * that is also `disallowed_by_default` unless a runtime flag re-enables it; this checker treats
 * both as errors, so the config never leans on something Envoy is about to remove.
 */
function deprecation(options: Record<string, unknown> | undefined, disallowedKey: string, sinceKey: string): string | undefined {
  if (!options) return undefined;
  if (options[disallowedKey] === true) return "disallowed by default: Envoy rejects it unless re-enabled at runtime";
  if (options.deprecated === true) {
    const since = options[sinceKey];
    return `deprecated${typeof since === "string" ? ` since API ${since}` : ""}: Envoy warns and will remove it`;
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// The walk
// ---------------------------------------------------------------------------------------------

type ScalarKind =
  | "double"
  | "float"
  | "int32"
  | "uint32"
  | "sint32"
  | "fixed32"
  | "sfixed32"
  | "int64"
  | "uint64"
  | "sint64"
  | "fixed64"
  | "sfixed64"
  | "bool"
  | "string"
  | "bytes";

const INTEGER_RANGES: Record<string, [bigint, bigint]> = {
  int32: [-(2n ** 31n), 2n ** 31n - 1n],
  sint32: [-(2n ** 31n), 2n ** 31n - 1n],
  sfixed32: [-(2n ** 31n), 2n ** 31n - 1n],
  uint32: [0n, 2n ** 32n - 1n],
  fixed32: [0n, 2n ** 32n - 1n],
  int64: [-(2n ** 63n), 2n ** 63n - 1n],
  sint64: [-(2n ** 63n), 2n ** 63n - 1n],
  sfixed64: [-(2n ** 63n), 2n ** 63n - 1n],
  uint64: [0n, 2n ** 64n - 1n],
  fixed64: [0n, 2n ** 64n - 1n],
};

/** A value that passed its type check, in the form PGV rules compare against. */
type Checked =
  | { kind: "string"; value: string }
  | { kind: "bytes"; length: number }
  | { kind: "bool"; value: boolean }
  | { kind: "double" | "float"; value: number }
  | { kind: "int32" | "uint32" | "sint32" | "fixed32" | "sfixed32" | "int64" | "uint64" | "sint64" | "fixed64" | "sfixed64"; value: bigint }
  | { kind: "enum"; value: number; type: Enum }
  | { kind: "duration"; nanos: bigint }
  | { kind: "any"; url: string }
  | { kind: "message" };

const MAX_DURATION_SECONDS = 315_576_000_000n;

class Walk {
  readonly errors: string[] = [];
  readonly messageTypes = new Set<string>();
  readonly typedConfigs = new Set<string>();

  constructor(private readonly protos: LoadedProtos) {}

  private error(path: string, message: string): void {
    this.errors.push(`${path || "(root)"}: ${message}`);
  }

  /** Checks `value` as the JSON form of `type`; returns it in rule-comparable form, or undefined. */
  message(type: Type, value: unknown, path: string): Checked | undefined {
    const name = fullName(type);
    this.messageTypes.add(name);
    const wrapped = WRAPPERS[name];
    if (wrapped) {
      if (!isPlainObject(value)) return this.scalar(wrapped, value, path);
      // The message form {value: x}, which Envoy's parser also takes.
      for (const key of Object.keys(value)) {
        if (key !== "value") this.error(path, `unknown field ${quote(key)} (a ${name} has only "value")`);
      }
      return value.value === undefined || value.value === null ? defaultScalar(wrapped) : this.scalar(wrapped, value.value, joinPath(path, "value"));
    }
    if (MESSAGE_FORM_ACCEPTED.has(name) && isPlainObject(value)) {
      // Also the message form, e.g. a Timestamp as {seconds, nanos}: Envoy's parser takes it.
      this.fields(type, value, path);
      return { kind: "message" };
    }
    switch (name) {
      case "google.protobuf.Any":
        return this.any(value, path);
      case "google.protobuf.Duration":
        return this.duration(value, path);
      case "google.protobuf.Timestamp":
        if (typeof value !== "string" || !isRfc3339(value)) {
          return this.mismatch(path, 'an RFC 3339 timestamp string such as "2024-01-31T12:00:00Z"', value);
        }
        return { kind: "message" };
      case "google.protobuf.FieldMask":
        if (typeof value !== "string") return this.mismatch(path, 'a field mask string such as "a.b,c"', value);
        return { kind: "message" };
      case "google.protobuf.Struct":
        if (!isPlainObject(value)) return this.mismatch(path, "an object (google.protobuf.Struct)", value);
        return { kind: "message" };
      case "google.protobuf.ListValue":
        if (!Array.isArray(value)) return this.mismatch(path, "a list (google.protobuf.ListValue)", value);
        return { kind: "message" };
      case "google.protobuf.Value":
        return { kind: "message" }; // any JSON at all
    }
    if (!isPlainObject(value)) return this.mismatch(path, `an object (${name})`, value);
    this.fields(type, value, path);
    return { kind: "message" };
  }

  /** The fields of an ordinary message: names, oneofs, deprecations and absent-field rules. */
  private fields(type: Type, object: Record<string, unknown>, path: string): void {
    const index = fieldIndex(type);
    const present = new Map<Field, string>();
    for (const [key, value] of Object.entries(object)) {
      const field = index.get(key);
      if (!field) {
        this.error(path, `unknown field ${quote(key)}${unknownFieldHint(type, key)}`);
        continue;
      }
      const earlier = present.get(field);
      if (earlier !== undefined) {
        this.error(path, `field ${quote(field.name)} is set twice (as ${quote(earlier)} and ${quote(key)})`);
        continue;
      }
      // proto3 JSON: null means "not set" (except for google.protobuf.Value, where it is NULL_VALUE).
      if (value === null && !holdsValue(field)) continue;
      present.set(field, key);
      const deprecated = deprecation(field.options, "(envoy.annotations.disallowed_by_default)", "(envoy.annotations.deprecated_at_minor_version)");
      if (deprecated) this.error(joinPath(path, key), `deprecated field ${quote(key)} (${deprecated})`);
      this.field(field, value, joinPath(path, key));
    }

    for (const oneof of type.oneofsArray) {
      if (!isRealOneof(oneof)) continue;
      const set = oneof.fieldsArray.filter((member) => present.has(member)).map((member) => present.get(member)!);
      if (set.length > 1) {
        this.error(path, `${set.map(quote).join(" and ")} are members of oneof ${quote(oneof.name)}; set only one`);
      } else if (set.length === 0 && oneof.options?.["(validate.required)"] === true) {
        const choices = oneof.fieldsArray.map((member) => quote(member.name)).join(", ");
        this.error(path, `missing required oneof ${quote(oneof.name)}: set one of ${choices}`);
      }
    }

    // PGV validates proto3 scalars whether or not they were written, so an absent
    // `string name = 1 [(validate.rules).string.min_len = 1]` fails: that is how Envoy's
    // protos spell "required". Oneof members and proto3 optionals are checked only when set.
    for (const field of type.fieldsArray) {
      if (present.has(field) || field.partOf) continue;
      const problem = this.absentProblem(field);
      if (problem !== undefined) {
        this.error(path, `missing required field ${quote(field.name)}${problem ? ` (${problem})` : ""}`);
      }
    }
  }

  /** Why leaving `field` out breaks its rules ("" for a bare "required"), or undefined if it may be absent. */
  private absentProblem(field: Field): string | undefined {
    const rules = rulesOf(field);
    if (field.map) {
      const min = rules.map?.min_pairs;
      return min > 0 ? `needs at least ${min} ${plural(min, "entry", "entries")}` : undefined;
    }
    if (field.repeated) {
      const min = rules.repeated?.min_items;
      return min > 0 ? `needs at least ${min} ${plural(min, "item", "items")}` : undefined;
    }
    const resolved = field.resolvedType;
    if (resolved instanceof Type) {
      const required = rules.message?.required || rules.duration?.required || rules.any?.required || rules.timestamp?.required;
      return required ? "" : undefined;
    }
    const fallback: Checked | undefined = resolved instanceof Enum ? { kind: "enum", value: 0, type: resolved } : defaultScalar(field.type as ScalarKind);
    if (!fallback) return undefined;
    const problems = violations(rules, fallback);
    return problems.length > 0 ? problems.join("; ") : undefined;
  }

  private field(field: Field, value: unknown, path: string): void {
    const rules = rulesOf(field);
    if (field instanceof MapField) {
      if (!isPlainObject(value)) {
        this.mismatch(path, "an object (a map)", value);
        return;
      }
      const entries = Object.entries(value);
      const mapRules = rules.map ?? {};
      if (mapRules.min_pairs !== undefined && entries.length < mapRules.min_pairs) {
        this.error(path, `needs at least ${mapRules.min_pairs} ${plural(mapRules.min_pairs, "entry", "entries")}, got ${entries.length}`);
      }
      if (mapRules.max_pairs !== undefined && entries.length > mapRules.max_pairs) {
        this.error(path, `allows at most ${mapRules.max_pairs} entries, got ${entries.length}`);
      }
      const keyType = field.keyType as ScalarKind;
      for (const [key, item] of entries) {
        const itemPath = `${path}[${JSON.stringify(key)}]`;
        const checkedKey = this.mapKey(keyType, key, itemPath);
        if (checkedKey && mapRules.keys) this.report(itemPath, violations(mapRules.keys, checkedKey), "key ");
        if (item === null && !holdsValue(field)) {
          this.error(itemPath, "null is not a valid map value");
          continue;
        }
        this.single(field, item, itemPath, mapRules.values ?? {});
      }
      return;
    }
    if (field.repeated) {
      if (!Array.isArray(value)) {
        // Protobuf's parser runs in legacy mode inside Envoy and would take a lone value as a
        // one-item list; that is a leniency, not the proto3 JSON mapping, so it is flagged.
        this.mismatch(path, "a list", value, "a lone value passes only through protobuf's legacy JSON leniency; write a list");
        return;
      }
      const listRules = rules.repeated ?? {};
      if (listRules.min_items !== undefined && value.length < listRules.min_items) {
        this.error(path, `needs at least ${listRules.min_items} ${plural(listRules.min_items, "item", "items")}, got ${value.length}`);
      }
      if (listRules.max_items !== undefined && value.length > listRules.max_items) {
        this.error(path, `allows at most ${listRules.max_items} items, got ${value.length}`);
      }
      if (listRules.unique) {
        const seen = new Set<string>();
        value.forEach((item, i) => {
          const key = JSON.stringify(item);
          if (seen.has(key)) this.error(`${path}[${i}]`, "duplicate item (items must be unique)");
          seen.add(key);
        });
      }
      value.forEach((item, i) => {
        if (item === null && !holdsValue(field)) {
          this.error(`${path}[${i}]`, "null is not a valid list item");
          return;
        }
        this.single(field, item, `${path}[${i}]`, listRules.items ?? {});
      });
      return;
    }
    this.single(field, value, path, rules);
  }

  /** One value of the field's element type, then the PGV rules that apply to it. */
  private single(field: Field, value: unknown, path: string, rules: Rules): void {
    const resolved = field.resolvedType;
    let checked: Checked | undefined;
    if (resolved instanceof Type) checked = this.message(resolved, value, path);
    else if (resolved instanceof Enum) checked = this.enumValue(resolved, value, path);
    else checked = this.scalar(field.type as ScalarKind, value, path);
    if (checked) this.report(path, violations(rules, checked));
  }

  private report(path: string, problems: string[], prefix = ""): void {
    for (const problem of problems) this.error(path, prefix + problem);
  }

  private any(value: unknown, path: string): Checked | undefined {
    if (!isPlainObject(value)) return this.mismatch(path, 'an object with "@type" (google.protobuf.Any)', value);
    const { "@type": url, ...rest } = value;
    if (url === undefined) {
      this.error(path, 'missing "@type" (an Any needs "@type: type.googleapis.com/<message name>")');
      return undefined;
    }
    const type = this.resolveTypeUrl(url, joinPath(path, "@type"));
    if (!type) return undefined;
    const name = fullName(type);
    const inner = `${path}(${name})`;
    if (SPECIAL_JSON.has(name)) {
      // Well-known types with a non-object JSON form sit under "value" inside an Any.
      const { value: payload, ...extra } = rest;
      for (const key of Object.keys(extra)) this.error(inner, `unknown field ${quote(key)} (an Any of ${name} holds only "@type" and "value")`);
      if (payload === undefined) this.error(inner, `missing "value" (an Any of ${name} holds its JSON under "value")`);
      else this.message(type, payload, inner);
    } else {
      this.message(type, rest, inner);
      if (TYPED_STRUCTS.has(name)) this.typedStruct(rest, inner);
    }
    return { kind: "any", url: url as string };
  }

  /** Envoy unpacks a TypedStruct into the message its `type_url` names, strictly, so check that too. */
  private typedStruct(struct: Record<string, unknown>, path: string): void {
    const url = struct.type_url ?? struct.typeUrl;
    if (typeof url !== "string") return; // already reported by the field walk if malformed
    const type = this.resolveTypeUrl(url, joinPath(path, "type_url"));
    if (!type) return;
    this.message(type, struct.value ?? {}, `${joinPath(path, "value")}(${fullName(type)})`);
  }

  private resolveTypeUrl(url: unknown, path: string): Type | undefined {
    if (typeof url !== "string") {
      this.mismatch(path, "a type URL string", url);
      return undefined;
    }
    if (!url.startsWith(TYPE_URL_PREFIX)) {
      this.error(path, `type URL ${quote(url)} must start with ${quote(TYPE_URL_PREFIX)}`);
      return undefined;
    }
    const name = url.slice(TYPE_URL_PREFIX.length);
    const found = name ? this.protos.root.lookup(`.${name}`) : null;
    if (!(found instanceof Type)) {
      const skipped = this.protos.skippedTypes.get(name);
      this.error(
        path,
        skipped
          ? `cannot check type ${quote(name)}: its proto ${skipped.file} was not loaded (it imports ${skipped.missingImport}, which @grpc/grpc-js-xds does not ship)`
          : `unknown type URL ${quote(url)}: no message ${quote(name)} in Envoy's API protos (as vendored by @grpc/grpc-js-xds, which leaves out contrib extensions)`,
      );
      return undefined;
    }
    if (found.filename && this.protos.frozenFiles.has(found.filename)) {
      this.error(path, `type ${quote(name)} is from a frozen v2-era package; Envoy v3 has no extension for it (use the v3 type)`);
      return undefined;
    }
    this.typedConfigs.add(url);
    return found;
  }

  private duration(value: unknown, path: string): Checked | undefined {
    let nanos: bigint | undefined;
    if (typeof value === "string") {
      // proto3 JSON: seconds with up to nine fractional digits and an "s" suffix, e.g. "1.5s".
      const match = /^(-?)(\d+)(?:\.(\d{1,9}))?s$/.exec(value);
      if (match) {
        nanos = BigInt(match[2]!) * 1_000_000_000n + BigInt((match[3] ?? "").padEnd(9, "0"));
        if (match[1]) nanos = -nanos;
      }
    } else if (isPlainObject(value)) {
      // Also accepted: the message form {seconds, nanos}.
      const { seconds = 0, nanos: fraction = 0, ...extra } = value;
      for (const key of Object.keys(extra)) this.error(path, `unknown field ${quote(key)} (a Duration has "seconds" and "nanos")`);
      const s = this.scalar("int64", seconds, joinPath(path, "seconds"));
      const n = this.scalar("int32", fraction, joinPath(path, "nanos"));
      if (!s || !n) return undefined;
      nanos = (s as { value: bigint }).value * 1_000_000_000n + (n as { value: bigint }).value;
    }
    if (nanos === undefined) return this.mismatch(path, 'a duration such as "1.5s" (digits, optional fraction, then "s")', value);
    if (nanos > MAX_DURATION_SECONDS * 1_000_000_000n || nanos < -MAX_DURATION_SECONDS * 1_000_000_000n) {
      this.error(path, "duration is out of range (at most 10,000 years)");
      return undefined;
    }
    return { kind: "duration", nanos };
  }

  private enumValue(type: Enum, value: unknown, path: string): Checked | undefined {
    let name: string | undefined;
    if (typeof value === "string") {
      if (!Object.hasOwn(type.values, value)) {
        // Envoy parses with case_insensitive_enum_parsing, so "round_robin" would load; the
        // checker still wants the name as declared, which is what every Envoy doc shows.
        const upper = value.toUpperCase();
        const hint = Object.hasOwn(type.values, upper)
          ? ` (write ${quote(upper)}: Envoy matches enum names case-insensitively, but the declared name is upper case)`
          : enumHint(type, value);
        this.error(path, `unknown enum value ${quote(value)} for ${fullName(type)}${hint}`);
        return undefined;
      }
      name = value;
    } else if (typeof value === "number" && Number.isInteger(value)) {
      name = type.valuesById[value];
      if (name === undefined) {
        this.error(path, `${value} is not a defined value of ${fullName(type)}${enumHint(type, "")}`);
        return undefined;
      }
    } else {
      return this.mismatch(path, `an enum value name (${fullName(type)})`, value);
    }
    const deprecated = deprecation(
      type.valuesOptions?.[name],
      "(envoy.annotations.disallowed_by_default_enum)",
      "(envoy.annotations.deprecated_at_minor_version_enum)",
    );
    if (deprecated) this.error(path, `deprecated enum value ${quote(name)} (${deprecated})`);
    return { kind: "enum", value: type.values[name]!, type };
  }

  private mapKey(keyType: ScalarKind, key: string, path: string): Checked | undefined {
    if (keyType === "string") return { kind: "string", value: key };
    if (keyType === "bool") {
      if (key === "true" || key === "false") return { kind: "bool", value: key === "true" };
      return this.mismatch(path, 'a map key "true" or "false"', key);
    }
    return this.scalar(keyType, key, path);
  }

  /** proto3 JSON scalars as Envoy's parser takes them. */
  private scalar(kind: ScalarKind, value: unknown, path: string): Checked | undefined {
    switch (kind) {
      case "string":
        return typeof value === "string" ? { kind, value } : this.mismatch(path, "a string", value);
      case "bool":
        if (typeof value === "boolean") return { kind, value };
        return this.mismatch(
          path,
          "true or false",
          value,
          typeof value === "string" && /^(true|false)$/i.test(value)
            ? "a quoted boolean passes only through protobuf's legacy JSON leniency; leave it unquoted"
            : undefined,
        );
      case "bytes":
        return typeof value === "string" && isBase64(value) ? { kind, length: base64Length(value) } : this.mismatch(path, "base64-encoded bytes", value);
      case "double":
      case "float": {
        const number =
          typeof value === "number"
            ? value
            : typeof value === "string" && /^(NaN|-?Infinity|-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?)$/.test(value)
              ? Number(value)
              : undefined;
        if (number === undefined) return this.mismatch(path, `a number (${kind})`, value);
        if (kind === "float" && Number.isFinite(number) && Math.abs(number) > 3.4028234663852886e38) {
          this.error(path, `${number} is out of range for a float`);
          return undefined;
        }
        return { kind, value: number };
      }
      default: {
        const range = INTEGER_RANGES[kind];
        if (!range) return { kind: "message" }; // not a scalar protobufjs reports; nothing to check
        const integer = parseInteger(value);
        if (integer === undefined) return this.mismatch(path, `an integer (${kind})`, value);
        if (integer < range[0] || integer > range[1]) {
          this.error(path, `${integer} is out of range for ${kind} (${range[0]} to ${range[1]})`);
          return undefined;
        }
        return { kind, value: integer } as Checked;
      }
    }
  }

  private mismatch(path: string, expected: string, value: unknown, note?: string): undefined {
    this.error(path, `expected ${expected}, got ${describe(value)}${note ? ` (${note})` : ""}`);
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// protoc-gen-validate rules
// ---------------------------------------------------------------------------------------------

/**
 * An integer as protobuf's JSON parser reads one: a JSON number, or a string holding one (the
 * proto3 mapping writes 64-bit integers as strings). Like protobuf, an integral float such as
 * "1e3" or "2.0" also counts, within the 2^53 a double holds exactly.
 */
function parseInteger(value: unknown): bigint | undefined {
  if (typeof value === "number") return Number.isInteger(value) ? BigInt(value) : undefined;
  if (typeof value !== "string" || /\s/.test(value) || value === "") return undefined;
  if (/^[-+]?\d+$/.test(value)) return BigInt(value);
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(value)) return undefined;
  const number = Number(value);
  return Number.isInteger(number) && Math.abs(number) <= 2 ** 53 ? BigInt(number) : undefined;
}

function defaultScalar(kind: ScalarKind): Checked | undefined {
  switch (kind) {
    case "string":
      return { kind, value: "" };
    case "bytes":
      return { kind, length: 0 };
    case "bool":
      return { kind, value: false };
    case "double":
    case "float":
      return { kind, value: 0 };
    default:
      return INTEGER_RANGES[kind] ? ({ kind, value: 0n } as Checked) : undefined;
  }
}

/** Well-known regexes as PGV defines them (validate.proto), strict and loose. */
const HEADER_REGEXES: Record<string, { strict: RegExp; what: string }> = {
  HTTP_HEADER_NAME: { strict: /^:?[0-9a-zA-Z!#$%&'*+\-.^_|~`]+$/, what: "an HTTP header name" },
  // biome-ignore lint/suspicious/noControlCharactersInRegex: the rule is about control characters (RFC 7230 field-value).
  HTTP_HEADER_VALUE: { strict: /^[^\u0000-\u0008\u000A-\u001F\u007F]*$/, what: "an HTTP header value" },
};
// biome-ignore lint/suspicious/noControlCharactersInRegex: NUL, CR and LF are exactly what a loose header value may not hold.
const LOOSE_HEADER = /^[^\u0000\u000A\u000D]*$/;

/** What a checked value breaks in `rules` (the rule set for its kind); empty when it passes. */
function violations(rules: Rules, checked: Checked): string[] {
  switch (checked.kind) {
    case "string":
      return rules.string && !(rules.string.ignore_empty && checked.value === "") ? stringViolations(rules.string, checked.value) : [];
    case "bytes":
      return rules.bytes ? bytesViolations(rules.bytes, checked.length) : [];
    case "bool":
      return rules.bool?.const !== undefined && checked.value !== rules.bool.const ? [`must be ${rules.bool.const}`] : [];
    case "enum":
      return rules.enum ? enumViolations(rules.enum, checked) : [];
    case "duration":
      return rules.duration ? durationViolations(rules.duration, checked.nanos) : [];
    case "any":
      return rules.any ? anyViolations(rules.any, checked.url) : [];
    case "message":
      return [];
    default:
      // Numbers: the rule set is named after the scalar type (uint32, int64, double...).
      return rules[checked.kind] ? numberViolations(rules[checked.kind], checked.value) : [];
  }
}

function stringViolations(r: Rules, text: string): string[] {
  const problems: string[] = [];
  const chars = [...text].length;
  const bytes = Buffer.byteLength(text, "utf8");
  if (r.const !== undefined && text !== r.const) problems.push(`must be ${quote(r.const)}`);
  if (r.len !== undefined && chars !== Number(r.len)) problems.push(`must be exactly ${r.len} characters long`);
  if (r.min_len !== undefined && chars < Number(r.min_len)) problems.push(`must be at least ${r.min_len} ${plural(r.min_len, "character", "characters")} long`);
  if (r.max_len !== undefined && chars > Number(r.max_len)) problems.push(`must be at most ${r.max_len} characters long, got ${chars}`);
  if (r.min_bytes !== undefined && bytes < Number(r.min_bytes)) problems.push(`must be at least ${r.min_bytes} ${plural(r.min_bytes, "byte", "bytes")} long`);
  if (r.max_bytes !== undefined && bytes > Number(r.max_bytes)) problems.push(`must be at most ${r.max_bytes} bytes long, got ${bytes}`);
  if (r.prefix !== undefined && !text.startsWith(r.prefix)) problems.push(`must start with ${quote(r.prefix)}`);
  if (r.suffix !== undefined && !text.endsWith(r.suffix)) problems.push(`must end with ${quote(r.suffix)}`);
  if (r.contains !== undefined && !text.includes(r.contains)) problems.push(`must contain ${quote(r.contains)}`);
  if (r.not_contains !== undefined && text.includes(r.not_contains)) problems.push(`must not contain ${quote(r.not_contains)}`);
  if (r.in !== undefined && !asList(r.in).includes(text)) problems.push(`must be one of ${asList(r.in).map(quote).join(", ")}`);
  if (r.not_in !== undefined && asList(r.not_in).includes(text)) problems.push(`must not be ${quote(text)}`);
  if (typeof r.pattern === "string") {
    // PGV patterns are RE2; the ones in Envoy's API are also valid JavaScript regexes.
    const pattern = compilePattern(r.pattern);
    if (pattern && !pattern.test(text)) problems.push(`must match the pattern ${r.pattern}`);
  }
  if (r.well_known_regex !== undefined) {
    const name = typeof r.well_known_regex === "number" ? ["", "HTTP_HEADER_NAME", "HTTP_HEADER_VALUE"][r.well_known_regex] : r.well_known_regex;
    const known = name ? HEADER_REGEXES[name] : undefined;
    const regex = known && (r.strict === false ? LOOSE_HEADER : known.strict);
    if (known && regex && !regex.test(text)) problems.push(`must be ${known.what}`);
  }
  return problems;
}

function bytesViolations(r: Rules, length: number): string[] {
  const problems: string[] = [];
  if (r.len !== undefined && length !== Number(r.len)) problems.push(`must be exactly ${r.len} bytes`);
  if (r.min_len !== undefined && length < Number(r.min_len)) problems.push(`must be at least ${r.min_len} ${plural(r.min_len, "byte", "bytes")}`);
  if (r.max_len !== undefined && length > Number(r.max_len)) problems.push(`must be at most ${r.max_len} bytes`);
  return problems;
}

function enumViolations(r: Rules, checked: Extract<Checked, { kind: "enum" }>): string[] {
  const problems: string[] = [];
  const name = (n: number) => checked.type.valuesById[n] ?? String(n);
  if (r.const !== undefined && checked.value !== Number(r.const)) problems.push(`must be ${name(Number(r.const))}`);
  if (r.in !== undefined && !asList(r.in).map(Number).includes(checked.value))
    problems.push(
      `must be one of ${asList(r.in)
        .map((n) => name(Number(n)))
        .join(", ")}`,
    );
  if (r.not_in !== undefined && asList(r.not_in).map(Number).includes(checked.value)) problems.push(`must not be ${name(checked.value)}`);
  return problems;
}

function durationViolations(r: Rules, nanos: bigint): string[] {
  const problems: string[] = [];
  const toNanos = (d: { seconds?: number | string; nanos?: number } = {}) => BigInt(d.seconds ?? 0) * 1_000_000_000n + BigInt(d.nanos ?? 0);
  if (r.const !== undefined && nanos !== toNanos(r.const)) problems.push(`must be ${formatNanos(toNanos(r.const))}`);
  const range = rangeProblem(nanos, boundsOf(r, toNanos), formatNanos);
  if (range) problems.push(range);
  return problems;
}

function anyViolations(r: Rules, url: string): string[] {
  const problems: string[] = [];
  if (r.in !== undefined && !asList(r.in).includes(url)) problems.push(`type must be one of ${asList(r.in).join(", ")}`);
  if (r.not_in !== undefined && asList(r.not_in).includes(url)) problems.push(`type ${url} is not allowed here`);
  return problems;
}

function numberViolations(r: Rules, value: number | bigint): string[] {
  const problems: string[] = [];
  const integral = typeof value === "bigint";
  const convert = (x: unknown): number | bigint => (integral ? BigInt(x as number) : Number(x));
  const show = (x: number | bigint) => String(x);
  if (r.const !== undefined && value !== convert(r.const)) problems.push(`must be ${r.const}`);
  if (r.in !== undefined && !asList(r.in).map(convert).includes(value)) problems.push(`must be one of ${asList(r.in).join(", ")}`);
  if (r.not_in !== undefined && asList(r.not_in).map(convert).includes(value)) problems.push(`must not be ${show(value)}`);
  const range = rangeProblem(value, boundsOf(r, convert), show);
  if (range) problems.push(range);
  return problems;
}

/** The range bounds (lt, lte, gt, gte) a rule set gives, converted for comparison. */
function boundsOf<T>(r: Rules, convert: (x: never) => T): Partial<Record<"lt" | "lte" | "gt" | "gte", T>> {
  return Object.fromEntries(["lt", "lte", "gt", "gte"].filter((k) => r[k] !== undefined).map((k) => [k, convert(r[k] as never)]));
}

/**
 * PGV range semantics: with both a lower and an upper bound the value must lie between them,
 * unless the upper bound is below the lower one, in which case it must lie outside.
 */
function rangeProblem<T extends number | bigint>(
  value: T,
  bounds: Partial<Record<"lt" | "lte" | "gt" | "gte", T>>,
  show: (x: T) => string,
): string | undefined {
  const { lt, lte, gt, gte } = bounds;
  const lower = gt ?? gte;
  const upper = lt ?? lte;
  const aboveLower = gt !== undefined ? value > gt : gte !== undefined ? value >= gte : true;
  const belowUpper = lt !== undefined ? value < lt : lte !== undefined ? value <= lte : true;
  const lowerText = gt !== undefined ? `greater than ${show(gt)}` : gte !== undefined ? `at least ${show(gte)}` : "";
  const upperText = lt !== undefined ? `less than ${show(lt)}` : lte !== undefined ? `at most ${show(lte)}` : "";
  if (lower !== undefined && upper !== undefined && upper < lower) {
    return aboveLower || belowUpper ? undefined : `must be ${upperText} or ${lowerText}, got ${show(value)}`;
  }
  if (aboveLower && belowUpper) return undefined;
  return `must be ${[lowerText, upperText].filter(Boolean).join(" and ")}, got ${show(value)}`;
}

const patterns = new Map<string, RegExp | null>();
function compilePattern(source: string): RegExp | null {
  if (!patterns.has(source)) {
    try {
      patterns.set(source, new RegExp(source, "u"));
    } catch {
      patterns.set(source, null); // an RE2-only construct: skip rather than guess
    }
  }
  return patterns.get(source)!;
}

// ---------------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------------

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function asList(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [value];
}

function joinPath(path: string, key: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) return `${path}[${JSON.stringify(key)}]`;
  return path ? `${path}.${key}` : key;
}

function quote(text: unknown): string {
  return JSON.stringify(String(text));
}

function plural(count: unknown, one: string, many: string): string {
  return Number(count) === 1 ? one : many;
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "an object";
  if (typeof value === "string") return `string ${JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value)}`;
  return `${typeof value} ${String(value)}`;
}

function formatNanos(nanos: bigint): string {
  const sign = nanos < 0n ? "-" : "";
  const abs = nanos < 0n ? -nanos : nanos;
  const fraction = (abs % 1_000_000_000n).toString().padStart(9, "0").replace(/0+$/, "");
  return `${sign}${abs / 1_000_000_000n}${fraction ? `.${fraction}` : ""}s`;
}

function isRfc3339(text: string): boolean {
  // Upper-case "T" and "Z" only: protobuf's parser refuses the lower-case forms RFC 3339 allows.
  return /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/.test(text) && !Number.isNaN(Date.parse(text));
}

/** proto3 JSON bytes: standard or URL-safe base64, padding optional. */
function isBase64(text: string): boolean {
  return /^[A-Za-z0-9+/_-]*={0,2}$/.test(text) && text.replace(/=+$/, "").length % 4 !== 1;
}

function base64Length(text: string): number {
  return Math.floor((text.replace(/=+$/, "").length * 3) / 4);
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
      diagonal = above;
    }
  }
  return row[b.length]!;
}

function closest(word: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(word.length / 4)) + 1;
  for (const candidate of candidates) {
    const distance = editDistance(word.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance) [best, bestDistance] = [candidate, distance];
  }
  return best;
}

function unknownFieldHint(type: Type, key: string): string {
  if (type.isReservedName(key)) return ` (removed from ${fullName(type)}; the name is reserved)`;
  const suggestion = closest(
    key,
    type.fieldsArray.map((field) => field.name),
  );
  return suggestion ? ` (did you mean ${quote(suggestion)}?)` : ` (not a field of ${fullName(type)})`;
}

function enumHint(type: Enum, value: string): string {
  const names = Object.keys(type.values);
  const suggestion = value ? closest(value, names) : undefined;
  if (suggestion) return ` (did you mean ${quote(suggestion)}?)`;
  return names.length <= 12 ? ` (expected one of ${names.join(", ")})` : "";
}

// ---------------------------------------------------------------------------------------------
// Entry points
// ---------------------------------------------------------------------------------------------

/**
 * Checks a parsed Envoy bootstrap (the object YAML or JSON parsing gives) against
 * `envoy.config.bootstrap.v3.Bootstrap`, collecting every problem rather than stopping at the
 * first.
 */
export function checkEnvoyConfig(config: unknown): EnvoyCheckResult {
  const protos = loadProtos();
  const walk = new Walk(protos);
  walk.message(protos.root.lookupType(".envoy.config.bootstrap.v3.Bootstrap"), config, "");
  return {
    errors: walk.errors,
    messageTypes: [...walk.messageTypes].sort(),
    typedConfigs: [...walk.typedConfigs].sort(),
  };
}

/** Parses YAML text the way Envoy does (see {@link parseEnvoyYaml}) and checks it with {@link checkEnvoyConfig}. */
export function checkEnvoyYaml(text: string): EnvoyCheckResult {
  const parsed = parseEnvoyYaml(text);
  if (parsed.errors.length > 0) return { errors: parsed.errors, messageTypes: [], typedConfigs: [] };
  return checkEnvoyConfig(parsed.value);
}

/**
 * Turns YAML text into the JSON value Envoy would hand to protobuf's JSON parser.
 *
 * Envoy does not use a YAML library's own typing: its yaml_utility.cc walks the yaml-cpp tree
 * and types each scalar itself. A quoted or block scalar is a string; an unquoted one is null
 * (`~`, `null`, empty), else a boolean if yaml-cpp reads one (`true`, `yes`, `on`, `y` and their
 * `False`/`OFF` kin), else an integer (decimal, `0x` hex or leading-zero octal; beyond int32 it
 * is passed on as a decimal string), else a string, floats included ("1.5" reaches protobuf as a
 * string, which numeric fields accept). So `name: yes` is a boolean and breaks a string field,
 * and `version: 1.5` is a fine string. Keys tagged `!ignore` are dropped, as Envoy does, so a
 * config can park YAML anchors under them.
 */
export function parseEnvoyYaml(text: string): { value: unknown; errors: string[] } {
  const document = parseDocument(text);
  const errors = document.errors.map((error) => `(yaml): ${error.message.split("\n")[0]}`);
  if (errors.length > 0) return { value: undefined, errors };
  // Resolve every alias in one pass, in document order (an anchor may be redefined, and an alias
  // means the latest definition before it): the yaml package's Alias.resolve() searches the
  // whole document per call, which made a 1,500-line config with many aliases take a second.
  const anchors = new Map<string, unknown>();
  const aliasTargets = new Map<unknown, unknown>();
  visit(document, {
    Node(_key, node) {
      if (isAlias(node)) aliasTargets.set(node, anchors.get(node.source));
      else if (node.anchor) anchors.set(node.anchor, node);
    },
  });
  const resolve = (node: unknown) => (isAlias(node) ? aliasTargets.get(node) : node);
  const convert = (node: unknown, path: string, depth: number): unknown => {
    if (depth > 200) {
      errors.push(`${path || "(root)"}: YAML nested too deeply (a recursive alias?)`);
      return null;
    }
    if (isAlias(node)) return convert(resolve(node), path, depth + 1);
    if (isMap(node)) {
      const object: Record<string, unknown> = {};
      for (const { key, value } of node.items) {
        const keyNode = resolve(key);
        if (isScalar(keyNode) && keyNode.tag === "!ignore") continue;
        if (!isScalar(keyNode)) {
          errors.push(`${path || "(root)"}: a map key must be a scalar`);
          continue;
        }
        const name = String(keyNode.source ?? keyNode.value ?? "");
        object[name] = convert(value, joinPath(path, name), depth + 1);
      }
      return object;
    }
    if (isSeq(node)) return node.items.map((item, i) => convert(item, `${path}[${i}]`, depth + 1));
    if (isScalar(node)) {
      if (node.type !== "PLAIN" || node.tag === "!") return String(node.value ?? "");
      return plainScalar(String(node.source ?? ""), node.tag === undefined);
    }
    return null; // `key:` with nothing after it
  };
  const value = convert(document.contents, "", 0);
  if (!isPlainObject(value)) errors.push("(root): the YAML document must be a map of bootstrap fields");
  return { value, errors };
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/** yaml-cpp's reading of an unquoted scalar, as Envoy applies it (see {@link parseEnvoyYaml}). */
function plainScalar(text: string, untagged: boolean): unknown {
  if (untagged && (text === "" || text === "~" || text === "null" || text === "Null" || text === "NULL")) return null;
  // yaml-cpp accepts these in lower case, upper case or capitalised only ("True", not "tRUE").
  const flexibleCase =
    text !== "" && (text === text.toLowerCase() || text === text.toUpperCase() || text === text[0]!.toUpperCase() + text.slice(1).toLowerCase());
  if (flexibleCase) {
    const lower = text.toLowerCase();
    if (["y", "yes", "true", "on"].includes(lower)) return true;
    if (["n", "no", "false", "off"].includes(lower)) return false;
  }
  // An istream read with the base left to the prefix, as yaml-cpp's int64 conversion does;
  // trailing whitespace is allowed, anything else left over means "not an integer".
  const match = /^([-+]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)\s*$/.exec(text);
  if (match) {
    const digits = match[2]!;
    const magnitude = /^0[xX]/.test(digits) ? BigInt(digits) : digits.length > 1 && digits.startsWith("0") ? BigInt(`0o${digits.slice(1)}`) : BigInt(digits);
    const integer = match[1] === "-" ? -magnitude : magnitude;
    if (integer >= INT64_MIN && integer <= INT64_MAX) {
      return integer >= -(2n ** 31n) && integer < 2n ** 31n ? Number(integer) : integer.toString();
    }
  }
  return text;
}

if (import.meta.main) {
  const file = process.argv[2];
  if (!file) {
    console.error("usage: bun gateway/check/envoy-strict.ts <envoy.yaml>");
    process.exit(2);
  }
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    console.error(`cannot read ${file}: ${(error as Error).message}`);
    process.exit(2);
  }
  const started = performance.now();
  const result = checkEnvoyYaml(text);
  const protos = loadEnvoyProtos();
  if (result.errors.length > 0) {
    for (const error of result.errors) console.error(error);
    console.error(`${file}: ${result.errors.length} ${plural(result.errors.length, "error", "errors")}`);
    process.exit(1);
  }
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  console.log(
    `OK ${file}: ${result.messageTypes.length} message types and ${result.typedConfigs.length} typed configs checked ` +
      `against ${protos.files} proto files (${protos.skipped.length} skipped for imports not shipped) in ${seconds}s`,
  );
}
