// Values travel in their exact form, JSON text (`inputsJson`, `dataJson`, `outputsJson`, ...), beside
// the convenient google.protobuf.Struct (a JsonObject in the generated messages), whose numbers are
// doubles and whose objects are unordered. The client sends and reads the JSON text, so objects keep
// their key order (JavaScript's own order: integer-like keys first, then the others as inserted)
// and whole numbers arrive as integers. JavaScript numbers cannot tell 1 from 1.0: a `t.float()`
// value of 1 is sent as 1. Values are checked to be plain JSON before sending, naming the first
// field that is not.
import type { JsonObject, JsonValue } from "@bufbuild/protobuf";

function check(value: unknown, path: string): void {
  if (value === null || typeof value === "string" || typeof value === "boolean") return;
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw new TypeError(`${path}: ${value} is not a JSON number`);
    return;
  }
  if (Array.isArray(value)) {
    value.forEach((item, i) => check(item, `${path}[${i}]`));
    return;
  }
  if (typeof value === "object" && Object.getPrototypeOf(value) === Object.prototype) {
    for (const [key, item] of Object.entries(value)) check(item, `${path}.${key}`);
    return;
  }
  const kind = value === undefined ? "undefined" : typeof value === "object" ? value.constructor.name : typeof value;
  throw new TypeError(`${path}: ${kind} is not a JSON value`);
}

/** `value` as a JsonObject; throws a TypeError naming the first field that is not JSON. */
export function toJsonObject(value: object, what = "inputs"): JsonObject {
  if (Array.isArray(value)) throw new TypeError(`${what} must be an object of field values, not an array`);
  for (const [key, item] of Object.entries(value)) check(item, `${what}.${key}`);
  return value as JsonObject;
}

/** `value` as exact JSON text (an object of field values); throws like `toJsonObject`. */
export function toJsonText(value: object, what = "inputs"): string {
  return JSON.stringify(toJsonObject(value, what));
}

/** Any JSON value as exact JSON text (a tool's result); `undefined` becomes null. */
export function valueToJsonText(value: unknown, what = "value"): string {
  check(value ?? null, what);
  return JSON.stringify(value ?? null);
}

/** A response's values: its exact JSON text when the server sent it, else the convenient form. */
export function exactObject(text: string, fallback: JsonObject | undefined): JsonObject {
  return text ? (JSON.parse(text) as JsonObject) : (fallback ?? {});
}

/** Like `exactObject`, for any JSON value. */
export function exactValue(text: string, fallback: JsonValue | undefined): JsonValue {
  return text ? (JSON.parse(text) as JsonValue) : (fallback ?? null);
}
