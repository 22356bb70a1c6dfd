// Inputs and demos travel as google.protobuf.Struct (a JsonObject in the generated messages): check
// that a value is plain JSON before sending it, naming the first field that is not.
import type { JsonObject } from "@bufbuild/protobuf";

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
