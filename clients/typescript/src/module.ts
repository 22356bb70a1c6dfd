// A handle on something that runs: an inline module (Predict, ChainOfThought) or a stored program.
import { create, type JsonObject } from "@bufbuild/protobuf";
import type { CallOptions as ConnectCallOptions, Client } from "@connectrpc/connect";
import {
  InferenceService,
  ParseCompletionRequestSchema,
  PredictRequestSchema,
  RenderPromptRequestSchema,
  BatchPredictRequestSchema,
  StreamPredictRequestSchema,
  type ParseCompletionResponse,
  type PredictEvent,
  type PredictRequest,
  type RunRequest,
} from "./gen/dspy_grpc/v1/inference_pb.js";
import {
  AdapterKind,
  ChainOfThoughtModuleSchema,
  ModuleSpecSchema,
  PredictModuleSchema,
  PredictorSpecSchema,
  ReActModuleSchema,
  ToolSpecSchema,
  type ModuleSpec,
  type ToolSpec,
} from "./gen/dspy_grpc/v1/module_pb.js";
import { ExampleSchema } from "./gen/dspy_grpc/v1/signature_pb.js";
import { rpc, rpcStream } from "./errors.js";
import {
  AsyncQueue,
  itemError,
  runStart,
  streamEvent,
  toolResult,
  type BatchItem,
  type StreamEvent,
  type Tools,
} from "./streams.js";
import { lmSpec, type LMLike } from "./lm.js";
import { Prediction, RenderedPrompt } from "./results.js";
import type { Fields, InferFields, Signature } from "./signature.js";
import { exactObject, toJsonText } from "./values.js";

/** An adapter by name, or the AdapterKind enum value. */
export type AdapterLike = "chat" | "json" | "xml" | "two_step" | AdapterKind;

const ADAPTERS: Record<string, AdapterKind> = {
  chat: AdapterKind.CHAT,
  json: AdapterKind.JSON,
  xml: AdapterKind.XML,
  two_step: AdapterKind.TWO_STEP,
};

export function adapterKind(adapter: AdapterLike | undefined): AdapterKind {
  if (adapter === undefined) return AdapterKind.UNSPECIFIED;
  if (typeof adapter === "number") return adapter;
  const kind = ADAPTERS[adapter];
  if (kind === undefined) throw new Error(`unknown adapter ${JSON.stringify(adapter)}: use chat, json, xml or two_step`);
  return kind;
}

/** Per-call options shared by every RPC. */
export interface RpcOptions {
  /** Deadline for this call, in milliseconds (default: the client's). */
  timeoutMs?: number;
  /** Cancels the call. */
  signal?: AbortSignal;
  /** Extra request metadata, e.g. `{ "x-request-id": "..." }`. */
  headers?: Record<string, string>;
}

/** Options of `Module.call` and `Module.stream`. */
export interface CallOptions extends RpcOptions {
  /** LM for predictors that do not name their own; unset: the server's default model. */
  lm?: LMLike;
  /** Return the per-predictor trace in `Prediction.trace`. */
  includeTrace?: boolean;
  /**
   * Tools a ReAct agent calls, run here as async functions (InferenceService.Run); needed when the
   * program has tools without a server-side `builtin`.
   */
  tools?: Tools;
  /** How long the server waits for each tool result, in milliseconds (default: the call's deadline). */
  toolTimeoutMs?: number;
}

/** Options of `Module.batch`. */
export interface BatchOptions extends RpcOptions {
  lm?: LMLike;
  includeTrace?: boolean;
  /** Items run at the same time on the server; default 8, at most 64. */
  maxConcurrency?: number;
}

/** How an inline module's predictor is set up. */
export interface PredictorOptions<I, O> {
  /** The predictor's own LM (wins over the LM given per call). */
  lm?: LMLike;
  /** chat (default), json, xml or two_step. */
  adapter?: AdapterLike;
  /** The LM that extracts fields from the main LM's answer; required with adapter "two_step". */
  extractionLm?: LMLike;
  /** Few-shot demos: field values by name. */
  demos?: Partial<I & O>[];
  /** Task instructions (override the signature's). */
  instructions?: string;
}

/** A completion parsed into outputs. */
export interface ParsedCompletion<O> {
  outputs: O;
  /** The adapter that parsed it: "chat", "json", "xml" or "two_step". */
  adapter: string;
  raw: ParseCompletionResponse;
}

/** What the client gives a module to make calls with. */
export interface Caller {
  inference: Client<typeof InferenceService>;
  callOptions(options: RpcOptions | undefined): ConnectCallOptions;
}

type Target = { case: "program"; value: string } | { case: "module"; value: ModuleSpec };

/** A tool defined here: its description for the LM, its typed arguments and the function. */
export interface ToolDefinition<A = any> {
  description: string;
  args: Fields;
  run: (args: A) => unknown | Promise<unknown>;
}

/**
 * A tool for `client.react`, run in this process:
 *
 *     tool("Add two numbers.", { a: t.int(), b: t.int() }, ({ a, b }) => a + b)
 */
export function tool<F extends Fields>(
  description: string,
  args: F,
  run: (args: InferFields<F>) => unknown | Promise<unknown>,
): ToolDefinition<InferFields<F>> {
  return { description, args, run };
}

/** How `client.react` is set up. */
export interface ReActOptions<I, O> extends Omit<PredictorOptions<I, O>, "demos"> {
  /** The tools: defined here (`tool(...)`), or run by the server (`{ builtin: "calculator" }`). */
  tools: Record<string, ToolDefinition | { builtin: string }>;
  /** Maximum steps; default 20, as in DSPy. */
  maxIters?: number;
}

function toolSpec(name: string, definition: ToolDefinition | { builtin: string }): ToolSpec {
  if ("builtin" in definition) return create(ToolSpecSchema, { name, builtin: definition.builtin });
  const schema = Object.fromEntries(Object.entries(definition.args).map(([arg, type]) => [arg, type.jsonSchema()]));
  return create(ToolSpecSchema, { name, description: definition.description, argsJsonSchema: JSON.stringify(schema) });
}

/** The ModuleSpec of `dspy.ReAct(sig, tools, max_iters)`, and the tools this process runs. */
export function reactSpec<I extends object, O extends object>(
  sig: Signature<I, O>,
  options: ReActOptions<I, O>,
): { spec: ModuleSpec; tools: Tools } {
  const predictor = moduleSpec("predict", sig, options);
  const tools: Tools = {};
  for (const [name, definition] of Object.entries(options.tools)) {
    if (!("builtin" in definition)) tools[name] = (args) => definition.run(args);
  }
  const react = create(ReActModuleSchema, {
    predictor: predictor.module.case === "predict" ? predictor.module.value.predictor : undefined,
    tools: Object.entries(options.tools).map(([name, definition]) => toolSpec(name, definition)),
    maxIters: options.maxIters ?? 0,
  });
  return { spec: create(ModuleSpecSchema, { module: { case: "react", value: react } }), tools };
}

/** The ModuleSpec of `dspy.Predict(sig)` or `dspy.ChainOfThought(sig)`. */
export function moduleSpec<I extends object, O extends object>(
  kind: "predict" | "chainOfThought",
  sig: Signature<I, O>,
  options: PredictorOptions<I, O> = {},
): ModuleSpec {
  const signatureProto = (options.instructions !== undefined ? sig.withInstructions(options.instructions) : sig).toProto();
  const predictor = create(PredictorSpecSchema, {
    signature: signatureProto,
    demos: (options.demos ?? []).map((demo) => create(ExampleSchema, { dataJson: toJsonText(demo, "demos") })),
    adapter: adapterKind(options.adapter),
    lm: options.lm === undefined ? undefined : lmSpec(options.lm),
    extractionLm: options.extractionLm === undefined ? undefined : lmSpec(options.extractionLm),
  });
  return create(ModuleSpecSchema, {
    module:
      kind === "predict"
        ? { case: "predict", value: create(PredictModuleSchema, { predictor }) }
        : { case: "chainOfThought", value: create(ChainOfThoughtModuleSchema, { predictor }) },
  });
}

/**
 * Runs an inline module or a stored program. `I` is the inputs' type, `O` the outputs'; outputs are
 * checked against the signature the module was made with (when it has one).
 */
export class Module<I extends object, O extends object> {
  constructor(
    private readonly caller: Caller,
    private readonly target: Target,
    private readonly parseOutputs: (outputs: JsonObject) => O,
    /** Tools this module's agent calls that run here (a ReAct module made with `client.react`). */
    private readonly tools?: Tools,
  ) {}

  private toolsFor(options: CallOptions): Tools | undefined {
    return this.tools || options.tools ? { ...this.tools, ...options.tools } : undefined;
  }

  /** The inline module's spec (to store it with `createProgram`); undefined for a stored program. */
  get spec(): ModuleSpec | undefined {
    return this.target.case === "module" ? this.target.value : undefined;
  }

  /** The stored program's name ("programs/qa"); undefined for an inline module. */
  get programName(): string | undefined {
    return this.target.case === "program" ? this.target.value : undefined;
  }

  private predictRequest(inputs: I, options: CallOptions): PredictRequest {
    return create(PredictRequestSchema, {
      target: this.target,
      inputsJson: toJsonText(inputs),
      lm: options.lm === undefined ? undefined : lmSpec(options.lm),
      includeTrace: options.includeTrace ?? false,
    });
  }

  /** Runs the module once on `inputs` (with `tools`, through Run, executing them here). */
  async call(inputs: I, options: CallOptions = {}): Promise<Prediction<O>> {
    if (this.toolsFor(options)) {
      for await (const event of this.stream(inputs, options)) {
        if (event.case === "prediction") return event.value;
      }
      throw new Error("the run ended without a prediction");
    }
    const request = this.predictRequest(inputs, options);
    const response = await rpc(() => this.caller.inference.predict(request, this.caller.callOptions(options)));
    return new Prediction(response.prediction!, this.parseOutputs);
  }

  /**
   * Runs the module once, yielding events as they happen: output text as the LM writes it
   * (`fieldDelta`), modules starting and finishing, tool calls, and last the typed `prediction`.
   * With `tools`, the calls of those tools are run here and answered (they show up as `toolCall`).
   * Leaving the loop early cancels the call.
   *
   *     for await (const event of qa.stream({ question })) {
   *       if (event.case === "fieldDelta") process.stdout.write(event.value.text);
   *     }
   */
  async *stream(inputs: I, options: CallOptions = {}): AsyncGenerator<StreamEvent<O>> {
    const request = this.predictRequest(inputs, options);
    const abort = new AbortController();
    const signal = options.signal ? AbortSignal.any([options.signal, abort.signal]) : abort.signal;
    const callOptions = this.caller.callOptions({ ...options, signal });
    const tools = this.toolsFor(options);
    const outgoing = new AsyncQueue<RunRequest>();
    let finished = false;
    try {
      let events: AsyncIterable<PredictEvent>;
      if (tools) {
        outgoing.push(runStart(request, tools, options.toolTimeoutMs));
        events = this.caller.inference.run(outgoing, callOptions);
      } else {
        const { target, inputsJson, lm, includeTrace } = request;
        const streamRequest = create(StreamPredictRequestSchema, { target, inputsJson, lm, includeTrace });
        events = this.caller.inference.streamPredict(streamRequest, callOptions);
      }
      for await (const raw of rpcStream(events)) {
        if (tools && raw.event.case === "toolCall") {
          void toolResult(tools, raw.event.value).then((answer) => outgoing.push(answer));
        }
        const event = streamEvent(raw, this.parseOutputs);
        if (event) yield event;
        if (event?.case === "prediction") finished = true;
      }
    } finally {
      outgoing.close();
      if (!finished) abort.abort();
    }
  }

  /**
   * Runs the module on each of `inputs` (BatchPredict), yielding each item's result as it
   * finishes (in completion order; `index` says which input it belongs to). A failed item carries
   * its `error`; the call itself fails only when the target or the request is bad.
   */
  async *batch(inputs: I[], options: BatchOptions = {}): AsyncGenerator<BatchItem<O>> {
    const request = create(BatchPredictRequestSchema, {
      target: this.target,
      inputsJson: inputs.map((item, i) => toJsonText(item, `inputs[${i}]`)),
      lm: options.lm === undefined ? undefined : lmSpec(options.lm),
      includeTrace: options.includeTrace ?? false,
      maxConcurrency: options.maxConcurrency ?? 0,
    });
    for await (const item of rpcStream(this.caller.inference.batchPredict(request, this.caller.callOptions(options)))) {
      if (item.result.case === "prediction") {
        let prediction: Prediction<O>;
        try {
          prediction = new Prediction(item.result.value, this.parseOutputs);
        } catch (error) {
          yield { index: item.index, error: error as Error };
          continue;
        }
        yield { index: item.index, prediction };
      } else if (item.result.case === "error") {
        yield { index: item.index, error: itemError(item.result.value) };
      }
    }
  }

  /** The exact messages one predictor would send to its LM, without calling it. */
  async renderPrompt(
    inputs: I,
    options: RpcOptions & { predictor?: string; adapter?: AdapterLike } = {},
  ): Promise<RenderedPrompt> {
    const request = create(RenderPromptRequestSchema, {
      target: this.target,
      inputsJson: toJsonText(inputs),
      predictor: options.predictor ?? "",
      adapter: adapterKind(options.adapter),
    });
    return new RenderedPrompt(
      await rpc(() => this.caller.inference.renderPrompt(request, this.caller.callOptions(options))),
    );
  }

  /** Parses an LM completion the way one predictor's adapter would; the outputs are checked like `call`'s. */
  async parseCompletion(
    completion: string,
    options: RpcOptions & { predictor?: string; adapter?: AdapterLike } = {},
  ): Promise<ParsedCompletion<O>> {
    const request = create(ParseCompletionRequestSchema, {
      target: this.target,
      completion,
      predictor: options.predictor ?? "",
      adapter: adapterKind(options.adapter),
    });
    const response = await rpc(() => this.caller.inference.parseCompletion(request, this.caller.callOptions(options)));
    const outputs = exactObject(response.outputsJson, response.outputs);
    return { outputs: this.parseOutputs(outputs), adapter: response.adapter, raw: response };
  }
}
