// What calls return: typed views over the response messages (each keeps the message as `raw`).
import type { JsonObject } from "@bufbuild/protobuf";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { ChatMessage, RenderPromptResponse } from "./gen/dspy_grpc/v1/inference_pb.js";
import type { AdapterFallback, ModelUsage, Prediction as PredictionProto, TraceStep } from "./gen/dspy_grpc/v1/prediction_pb.js";
import type { Program as ProgramProto } from "./gen/dspy_grpc/v1/program_pb.js";
import { exactObject } from "./values.js";

/** Tokens one model spent. */
export interface Usage {
  model: string;
  promptTokens: number;
  completionTokens: number;
  totalTokens: number;
  calls: number;
}

function usage(u: ModelUsage): Usage {
  return {
    model: u.model,
    promptTokens: Number(u.promptTokens),
    completionTokens: Number(u.completionTokens),
    totalTokens: Number(u.totalTokens),
    calls: u.calls,
  };
}

/** The result of running a module: `outputs` are checked against the module's signature. */
export class Prediction<O> {
  /** Output field values (read from the exact JSON form: key order and integers kept). */
  readonly outputs: O;
  /** Tokens spent, per model. */
  readonly usage: Usage[];
  /** Per-predictor calls, when the call asked for `includeTrace`. */
  readonly trace: TraceStep[];
  /** Predictor calls whose completion was retried with another adapter (an extra LM call each). */
  readonly adapterFallbacks: AdapterFallback[];
  /** The stored program that ran ("programs/qa"), empty for inline modules. */
  readonly program: string;
  /** Its revision, e.g. "r0002". */
  readonly revisionId: string;

  constructor(
    /** The Prediction message as received. */
    readonly raw: PredictionProto,
    parseOutputs: (outputs: JsonObject) => O,
  ) {
    this.outputs = parseOutputs(exactObject(raw.outputsJson, raw.outputs));
    this.usage = raw.usage.map(usage);
    this.trace = raw.trace;
    this.adapterFallbacks = raw.adapterFallbacks;
    this.program = raw.program;
    this.revisionId = raw.revisionId;
  }

  /** Tokens spent across all models. */
  get totalTokens(): number {
    return this.usage.reduce((sum, u) => sum + u.totalTokens, 0);
  }
}

/** The messages (and request options) a predictor would send to its LM. */
export class RenderedPrompt {
  readonly messages: ChatMessage[];
  /** Sampling options and, for JSON, `response_format`, as in the chat completions request body. */
  readonly requestOptions: JsonObject;
  /** The predictor rendered, e.g. "predict". */
  readonly predictor: string;
  /** The adapter used: "chat", "json", "xml" or "two_step". */
  readonly adapter: string;

  constructor(readonly raw: RenderPromptResponse) {
    this.messages = raw.messages;
    this.requestOptions = exactObject(raw.requestOptionsJson, raw.requestOptions);
    this.predictor = raw.predictor;
    this.adapter = raw.adapter;
  }
}

/** A stored program at one revision. */
export class Program {
  /** "programs/{id}". */
  readonly name: string;
  readonly displayName: string;
  readonly description: string;
  readonly labels: Record<string, string>;
  /** The revision shown, e.g. "r0001". */
  readonly revisionId: string;
  /** Send back in updates and deletes to guard against concurrent changes. */
  readonly etag: string;
  readonly createTime?: Date;
  readonly updateTime?: Date;

  constructor(readonly raw: ProgramProto) {
    this.name = raw.name;
    this.displayName = raw.displayName;
    this.description = raw.description;
    this.labels = raw.labels;
    this.revisionId = raw.revisionId;
    this.etag = raw.etag;
    this.createTime = raw.createTime ? timestampDate(raw.createTime) : undefined;
    this.updateTime = raw.updateTime ? timestampDate(raw.updateTime) : undefined;
  }

  /** The id, e.g. "qa". */
  get id(): string {
    return this.name.slice("programs/".length);
  }

  /** The name of this exact revision, e.g. "programs/qa@r0002". */
  get revisionName(): string {
    return `${this.name}@${this.revisionId}`;
  }
}
