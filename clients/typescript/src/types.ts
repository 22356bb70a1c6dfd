// Field types for signatures: each one is a TypeScript type (for inference), a DSPy type (sent to
// the server as a TypeSpec) and a runtime check (applied to every output the server returns).
//
//   const sig = signature({
//     inputs: { question: t.string(), context: t.list(t.string()) },
//     outputs: { answer: t.string(), confidence: t.float().describe("between 0 and 1") },
//   });
import { create, type JsonObject, type JsonValue } from "@bufbuild/protobuf";
import { ValueSchema, type Value } from "@bufbuild/protobuf/wkt";
import { fromJson } from "@bufbuild/protobuf";
import { TypeKind, TypeSpecSchema, type TypeSpec } from "./gen/dspy_grpc/v1/signature_pb.js";

/** An output value that does not have the type its signature declares. */
export class OutputValidationError extends Error {
  override readonly name = "OutputValidationError";
  constructor(
    /** Where in the outputs, e.g. `answer` or `items[2]`. */
    readonly path: string,
    /** The declared DSPy type, e.g. `list[int]`. */
    readonly expected: string,
    /** The value received. */
    readonly value: unknown,
  ) {
    super(`output ${path}: expected ${expected}, got ${JSON.stringify(value) ?? String(value)}`);
  }
}

interface TypeDef<T> {
  kind: TypeKind;
  /** The JSON schema of the values (for tool arguments). */
  schema: JsonObject;
  /** How DSPy spells the type, e.g. `list[str]`. */
  dspy: string;
  args?: FieldType<unknown>[];
  values?: JsonValue[];
  check(value: unknown, path: string): T;
}

/** A signature field's type. `T` is the TypeScript type of its values. */
export class FieldType<T> {
  /** Only for type inference; never set. */
  declare readonly __type?: T;

  constructor(
    private readonly def: TypeDef<T>,
    /** Description shown to the LM (DSPy's `desc=`). */
    readonly description?: string,
  ) {}

  /** DSPy's spelling of the type, e.g. `dict[str, int]`. */
  get dspy(): string {
    return this.def.dspy;
  }

  /** The same type with a description for the LM. */
  describe(description: string): FieldType<T> {
    return new FieldType(this.def, description);
  }

  /** The type as the server's TypeSpec message. */
  toProto(): TypeSpec {
    return create(TypeSpecSchema, {
      kind: this.def.kind,
      args: (this.def.args ?? []).map((arg) => arg.toProto()),
      values: (this.def.values ?? []).map((v): Value => fromJson(ValueSchema, v)),
      valuesJson: (this.def.values ?? []).map((v) => JSON.stringify(v)),
    });
  }

  /** The JSON schema of the values, with the description. */
  jsonSchema(): JsonObject {
    return this.description ? { ...this.def.schema, description: this.description } : this.def.schema;
  }

  /** Checks a value received from the server; throws OutputValidationError if it does not fit. */
  parse(value: unknown, path: string): T {
    return this.def.check(value, path);
  }
}

/** The TypeScript type of a FieldType's values. */
export type Infer<F> = F extends FieldType<infer T> ? T : never;

function fail(path: string, expected: string, value: unknown): never {
  throw new OutputValidationError(path, expected, value);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function scalar<T>(kind: TypeKind, dspy: string, type: string, ok: (v: unknown) => boolean): FieldType<T> {
  return new FieldType<T>({
    kind,
    dspy,
    schema: { type },
    check: (v, path) => (ok(v) ? (v as T) : fail(path, dspy, v)),
  });
}

/** Builders for field types, named after DSPy's (Python) types. */
export const t = {
  /** `str` */
  string: (): FieldType<string> => scalar(TypeKind.STR, "str", "string", (v) => typeof v === "string"),
  /** `int`: a whole number. */
  int: (): FieldType<number> => scalar(TypeKind.INT, "int", "integer", (v) => Number.isInteger(v)),
  /** `float` */
  float: (): FieldType<number> =>
    scalar(TypeKind.FLOAT, "float", "number", (v) => typeof v === "number" && Number.isFinite(v)),
  /** `bool` */
  bool: (): FieldType<boolean> => scalar(TypeKind.BOOL, "bool", "boolean", (v) => typeof v === "boolean"),
  /** `datetime.datetime`: an ISO 8601 string ("2024-01-02T03:04:05"). */
  datetime: (): FieldType<string> =>
    new FieldType<string>({
      kind: TypeKind.DATETIME,
      dspy: "datetime",
      schema: { type: "string", format: "date-time" },
      check: (v, path) => (typeof v === "string" && !Number.isNaN(Date.parse(v)) ? v : fail(path, "datetime", v)),
    }),
  /** `datetime.date`: an ISO 8601 date string ("2024-01-02"). */
  date: (): FieldType<string> =>
    new FieldType<string>({
      kind: TypeKind.DATE,
      dspy: "date",
      schema: { type: "string", format: "date" },
      check: (v, path) => (typeof v === "string" && /^\d{4}-\d{2}-\d{2}$/.test(v) ? v : fail(path, "date", v)),
    }),
  /** `Any`: any JSON value, unchecked. */
  any: (): FieldType<JsonValue> => new FieldType({ kind: TypeKind.ANY, dspy: "Any", schema: {}, check: (v) => v as JsonValue }),

  /** `list[T]` */
  list<T>(item: FieldType<T>): FieldType<T[]> {
    const dspy = `list[${item.dspy}]`;
    return new FieldType({
      kind: TypeKind.LIST,
      dspy,
      schema: { type: "array", items: item.jsonSchema() },
      args: [item],
      check: (v, path) => (Array.isArray(v) ? v.map((x, i) => item.parse(x, `${path}[${i}]`)) : fail(path, dspy, v)),
    });
  },

  /** `dict[str, T]` */
  dict<T>(value: FieldType<T>): FieldType<Record<string, T>> {
    const dspy = `dict[str, ${value.dspy}]`;
    return new FieldType({
      kind: TypeKind.DICT,
      dspy,
      schema: { type: "object", additionalProperties: value.jsonSchema() },
      args: [t.string(), value],
      check: (v, path) => {
        if (!isPlainObject(v)) fail(path, dspy, v);
        return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, value.parse(x, `${path}.${k}`)]));
      },
    });
  },

  /** `Literal[...]`: one of the given values. */
  literal<const V extends readonly (string | number | boolean)[]>(...values: V): FieldType<V[number]> {
    const dspy = `Literal[${values.map((v) => JSON.stringify(v)).join(", ")}]`;
    return new FieldType({
      kind: TypeKind.LITERAL,
      dspy,
      schema: { enum: [...values] },
      values: [...values],
      check: (v, path) => (values.includes(v as V[number]) ? (v as V[number]) : fail(path, dspy, v)),
    });
  },

  /** `Optional[T]`: the value may be null (an absent output reads as null). */
  optional<T>(inner: FieldType<T>): FieldType<T | null> {
    const dspy = `Optional[${inner.dspy}]`;
    return new FieldType({
      kind: TypeKind.OPTIONAL,
      dspy,
      schema: { anyOf: [inner.jsonSchema(), { type: "null" }] },
      args: [inner],
      check: (v, path) => (v === null || v === undefined ? null : inner.parse(v, path)),
    });
  },
};

// ---- DSPy's type spellings, as found in string signatures ("question, k: int -> answers: list[str]").

/** Splits on commas that are not inside brackets or quotes. */
export function splitTopLevel(text: string, separator = ","): string[] {
  const parts: string[] = [];
  let depth = 0;
  let quote: string | null = null;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quote) {
      if (c === quote) quote = null;
    } else if (c === "'" || c === '"') quote = c;
    else if (c === "[" || c === "(") depth++;
    else if (c === "]" || c === ")") depth--;
    else if (c === separator && depth === 0) {
      parts.push(text.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(text.slice(start));
  return parts.map((p) => p.trim()).filter((p) => p.length > 0);
}

/**
 * The FieldType for a DSPy type annotation such as `list[str]` or `Optional[int]`. Types this
 * client does not check itself (custom classes, dspy.Image, ...) become `t.any()`: the server still
 * validates them.
 */
export function typeFromAnnotation(annotation: string): FieldType<unknown> {
  const text = annotation.trim();
  const union = splitTopLevel(text, "|");
  if (union.length > 1) {
    const rest = union.filter((p) => p !== "None");
    if (rest.length === 1 && union.length === 2) return t.optional(typeFromAnnotation(rest[0]!));
    return t.any();
  }
  const generic = /^([A-Za-z_.]+)\[(.*)\]$/s.exec(text);
  if (generic) {
    const [, head, inner] = generic;
    const args = splitTopLevel(inner!);
    switch (head!.replace(/^typing\./, "")) {
      case "list":
      case "List":
        return args.length === 1 ? t.list(typeFromAnnotation(args[0]!)) : t.any();
      case "dict":
      case "Dict":
        return args.length === 2 ? t.dict(typeFromAnnotation(args[1]!)) : t.any();
      case "Optional":
        return args.length === 1 ? t.optional(typeFromAnnotation(args[0]!)) : t.any();
      case "Literal": {
        const values = args.map(literalValue);
        return values.every((v) => v !== undefined) ? t.literal(...(values as (string | number | boolean)[])) : t.any();
      }
      default:
        return t.any();
    }
  }
  switch (text) {
    case "str":
      return t.string();
    case "int":
      return t.int();
    case "float":
      return t.float();
    case "bool":
      return t.bool();
    case "datetime":
    case "datetime.datetime":
      return t.datetime();
    case "date":
    case "datetime.date":
      return t.date();
    default:
      return t.any();
  }
}

function literalValue(text: string): string | number | boolean | undefined {
  const quoted = /^(['"])(.*)\1$/s.exec(text);
  if (quoted) return quoted[2];
  if (text === "True") return true;
  if (text === "False") return false;
  const n = Number(text);
  return text !== "" && Number.isFinite(n) ? n : undefined;
}
