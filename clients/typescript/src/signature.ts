// Signatures: what a module takes and returns. Typed (`signature({inputs, outputs})`, with `t`
// field types) or in DSPy's string form (`signature("question -> answer: int")`).
import { create, type JsonObject, type JsonValue } from "@bufbuild/protobuf";
import {
  FieldRole,
  SignatureFieldSchema,
  SignatureSchema,
  type Signature as SignatureProto,
} from "./gen/dspy_grpc/v1/signature_pb.js";
import { FieldType, OutputValidationError, splitTopLevel, t, typeFromAnnotation, type Infer } from "./types.js";

/** Field name -> field type. */
export type Fields = Record<string, FieldType<any>>;
/** The object type a set of fields describes. */
export type InferFields<F extends Fields> = { [K in keyof F]: Infer<F[K]> };

/** Input values: a JSON object. */
export type Inputs = { [name: string]: JsonValue };
/** Output values: a JSON object unless a typed signature says more. */
export type Outputs = { [name: string]: unknown };

/**
 * A DSPy signature. `I` and `O` are the types of its inputs and outputs; `parseOutputs` checks the
 * outputs a server returns against the declared field types.
 */
export class Signature<I extends object = Inputs, O extends object = Outputs> {
  /** Only for type inference; never set. */
  declare readonly __types?: { inputs: I; outputs: O };

  constructor(
    /** Input fields, in order. */
    readonly inputs: Fields,
    /** Output fields, in order. */
    readonly outputs: Fields,
    /** Task instructions; unset means DSPy's default. */
    readonly instructions?: string,
    /** The string form, when the signature was written as one (the server then parses it). */
    readonly text?: string,
  ) {}

  /** The same signature with other instructions. */
  withInstructions(instructions: string): Signature<I, O> {
    return new Signature<I, O>(this.inputs, this.outputs, instructions, this.text);
  }

  /** The signature as the server's Signature message. */
  toProto(): SignatureProto {
    const proto = create(SignatureSchema, { instructions: this.instructions });
    if (this.text !== undefined) {
      proto.text = this.text;
      return proto;
    }
    const field = (name: string, type: FieldType<unknown>, role: FieldRole) =>
      create(SignatureFieldSchema, { name, role, type: type.toProto(), description: type.description });
    proto.fields = [
      ...Object.entries(this.inputs).map(([name, type]) => field(name, type, FieldRole.INPUT)),
      ...Object.entries(this.outputs).map(([name, type]) => field(name, type, FieldRole.OUTPUT)),
    ];
    return proto;
  }

  /**
   * Checks outputs received from the server: every declared output field must be there (optional
   * ones may be absent) with a value of its type. Fields the signature does not declare (such as
   * ChainOfThought's `reasoning` on a Predict signature) are kept as they are.
   */
  parseOutputs(outputs: JsonObject): O {
    const result: Record<string, unknown> = { ...outputs };
    for (const [name, type] of Object.entries(this.outputs)) {
      if (!(name in outputs) && !type.dspy.startsWith("Optional[")) {
        throw new OutputValidationError(name, type.dspy, undefined);
      }
      result[name] = type.parse(outputs[name], name);
    }
    return result as O;
  }
}

/** A typed signature: `signature({ inputs: { question: t.string() }, outputs: { answer: t.string() } })`. */
export function signature<IF extends Fields, OF extends Fields>(definition: {
  inputs: IF;
  outputs: OF;
  instructions?: string;
}): Signature<InferFields<IF>, InferFields<OF>>;
/**
 * A signature in DSPy's string form, e.g. `"question, context: list[str] -> answer: int"`. Give the
 * input and output types as type arguments to have them typed; outputs are checked at run time
 * against the types written in the string (str, int, float, bool, list, dict, Optional, Literal).
 */
export function signature<I extends object = Inputs, O extends object = Outputs>(
  text: string,
  instructions?: string,
): Signature<I, O>;
export function signature(
  definition: string | { inputs: Fields; outputs: Fields; instructions?: string },
  instructions?: string,
): Signature<object, object> {
  if (typeof definition !== "string") {
    return new Signature(definition.inputs, definition.outputs, definition.instructions);
  }
  const [inputs, outputs] = parseSignatureText(definition);
  return new Signature(inputs, outputs, instructions, definition);
}

/** Fields of a string signature, as far as this client can read them (the server has the last word). */
function parseSignatureText(text: string): [Fields, Fields] {
  const sides = text.split("->");
  if (sides.length !== 2) {
    throw new Error(`signature ${JSON.stringify(text)} must have exactly one "->" between inputs and outputs`);
  }
  const fields = (side: string): Fields =>
    Object.fromEntries(
      splitTopLevel(side).map((part) => {
        const colon = part.indexOf(":");
        const name = (colon < 0 ? part : part.slice(0, colon)).trim();
        return [name, colon < 0 ? t.string() : typeFromAnnotation(part.slice(colon + 1))];
      }),
    );
  return [fields(sides[0]!), fields(sides[1]!)];
}

/** A signature with ChainOfThought's `reasoning: str` output first, as DSPy adds it. */
export function withReasoning<I extends object, O extends object>(
  sig: Signature<I, O>,
): Signature<I, { reasoning: string } & O> {
  return new Signature(sig.inputs, { reasoning: t.string(), ...sig.outputs }, sig.instructions, sig.text);
}
