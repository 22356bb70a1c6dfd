// Which LM a module calls: a model alias from the server's configuration, or a scripted LM carried in
// the request (DSPy's DummyLM), with sampling options.
import { create, isMessage } from "@bufbuild/protobuf";
import {
  DummyLMSchema,
  DummyResponseSchema,
  DummyRuleSchema,
  LMOptionsSchema,
  LMSpecSchema,
  type DummyResponse,
  type LMSpec,
} from "./gen/dspy_grpc/v1/lm_spec_pb.js";
import { toJsonText } from "./values.js";

/** Sampling options; unset ones take the model's configured defaults. */
export interface LMOptions {
  temperature?: number;
  maxTokens?: number;
  topP?: number;
  stop?: string[];
  seed?: number;
}

/**
 * One scripted reply: output field values (rendered as the adapter expects), or a raw completion.
 * Any plain object will do (an interface or a variable's inferred type too); it is checked to be
 * JSON when the request is built.
 */
export type ScriptedReply = object | string;

/**
 * An LM:
 * - `"gpt-4o-mini"`: a model alias from the server's configuration (`"dummy"` is built in);
 * - `{ model: "gpt-4o-mini", temperature: 0 }`: an alias with sampling options;
 * - `{ responses: [{ answer: "Paris" }] }`: a scripted LM — replies in order, `rules` chosen by the
 *   content of the last user message, `auto` placeholders for anything else;
 * - an `LMSpec` message, passed through.
 */
export type LMLike =
  | string
  | LMSpec
  | (LMOptions & { model: string })
  | (LMOptions & {
      responses?: ScriptedReply[];
      rules?: { contains: string; response: ScriptedReply }[];
      auto?: boolean;
    });

function reply(value: ScriptedReply): DummyResponse {
  return typeof value === "string"
    ? create(DummyResponseSchema, { reply: { case: "text", value } })
    : create(DummyResponseSchema, { reply: { case: "fieldsJson", value: toJsonText(value, "responses") } });
}

/** The LMSpec message for an LMLike. */
export function lmSpec(lm: LMLike): LMSpec {
  if (isMessage(lm, LMSpecSchema)) return lm;
  if (typeof lm === "string") return create(LMSpecSchema, { source: { case: "model", value: lm } });
  const spec = create(LMSpecSchema);
  if ("model" in lm) {
    spec.source = { case: "model", value: lm.model };
  } else {
    spec.source = {
      case: "dummy",
      value: create(DummyLMSchema, {
        responses: (lm.responses ?? []).map(reply),
        rules: (lm.rules ?? []).map((rule) =>
          create(DummyRuleSchema, { contains: rule.contains, response: reply(rule.response) }),
        ),
        auto: lm.auto ?? false,
      }),
    };
  }
  const { temperature, maxTokens, topP, stop, seed } = lm;
  if ([temperature, maxTokens, topP, stop, seed].some((v) => v !== undefined)) {
    spec.options = create(LMOptionsSchema, {
      temperature,
      maxTokens,
      topP,
      stop: stop ?? [],
      seed: seed === undefined ? undefined : BigInt(seed),
    });
  }
  return spec;
}
