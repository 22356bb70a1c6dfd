// Streaming calls: StreamPredict and Run (tools executed here, as async functions) yield events;
// BatchPredict yields one result per input.
import { create, type JsonObject } from "@bufbuild/protobuf";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import {
  RunRequestSchema,
  type FieldDelta,
  type ItemError,
  type ModuleEvent,
  type PredictEvent,
  type PredictRequest,
  type RetrievalEvent,
  type RunRequest,
  type ToolCall,
  type ToolCallEvent,
  type ToolResult,
} from "./gen/dspy_grpc/v1/inference_pb.js";
import { DspyGrpcError, type StatusName } from "./errors.js";
import { Prediction } from "./results.js";
import { exactObject, valueToJsonText } from "./values.js";

/**
 * A tool the agent may call, run in this process: it gets the arguments the LM chose and returns
 * any JSON value (the agent's observation). A thrown error becomes the observation
 * "Execution error in <tool>: <message>", as in DSPy.
 */
export type Tool = (args: JsonObject) => unknown | Promise<unknown>;

/** Tools by the name the LM calls them. */
export type Tools = Record<string, Tool>;

/** One event of a streamed run (the generated PredictEvent's oneof, with a typed final prediction). */
export type StreamEvent<O> =
  | { case: "fieldDelta"; value: FieldDelta }
  | { case: "moduleStarted"; value: ModuleEvent }
  | { case: "moduleFinished"; value: ModuleEvent }
  | { case: "toolCallStarted"; value: ToolCallEvent }
  | { case: "toolCallFinished"; value: ToolCallEvent }
  | { case: "toolCall"; value: ToolCall }
  | { case: "retrieval"; value: RetrievalEvent }
  | { case: "prediction"; value: Prediction<O> };

export function streamEvent<O>(event: PredictEvent, parseOutputs: (outputs: JsonObject) => O): StreamEvent<O> | undefined {
  const e = event.event;
  if (e.case === undefined) return undefined;
  if (e.case === "prediction") return { case: "prediction", value: new Prediction(e.value, parseOutputs) };
  return e as StreamEvent<O>;
}

/** An async iterable fed by `push`, ended by `close` (the request side of a bidi call). */
export class AsyncQueue<T> implements AsyncIterable<T> {
  private readonly items: T[] = [];
  private waiting?: () => void;
  private closed = false;

  push(item: T): void {
    if (this.closed) return;
    this.items.push(item);
    this.wake();
  }

  close(): void {
    this.closed = true;
    this.wake();
  }

  private wake(): void {
    const resolve = this.waiting;
    this.waiting = undefined;
    resolve?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    for (;;) {
      const item = this.items.shift();
      if (item !== undefined) {
        yield item;
      } else if (this.closed) {
        return;
      } else {
        await new Promise<void>((resolve) => (this.waiting = resolve));
      }
    }
  }
}

/** The Run call's first message. */
export function runStart(request: PredictRequest, tools: Tools, toolTimeoutMs?: number): RunRequest {
  return create(RunRequestSchema, {
    message: {
      case: "start",
      value: {
        request,
        tools: Object.keys(tools),
        toolTimeout: toolTimeoutMs === undefined ? undefined : durationFromMs(toolTimeoutMs),
      },
    },
  });
}

/** Runs one caller tool and builds the answer to its `tool_call`. */
export async function toolResult(tools: Tools, call: ToolCall): Promise<RunRequest> {
  const answer = (outcome: ToolResult["outcome"]) =>
    create(RunRequestSchema, { message: { case: "toolResult", value: { callId: call.callId, outcome } } });
  const tool = tools[call.tool];
  if (!tool) return answer({ case: "error", value: `no tool named ${JSON.stringify(call.tool)} in this client` });
  try {
    const output = await tool(exactObject(call.argsJson, call.args));
    return answer({ case: "outputJson", value: valueToJsonText(output, `${call.tool} result`) });
  } catch (error) {
    return answer({ case: "error", value: error instanceof Error ? error.message : String(error) });
  }
}

const CODES: Record<string, Code> = {
  CANCELLED: Code.Canceled,
  UNKNOWN: Code.Unknown,
  INVALID_ARGUMENT: Code.InvalidArgument,
  DEADLINE_EXCEEDED: Code.DeadlineExceeded,
  NOT_FOUND: Code.NotFound,
  ALREADY_EXISTS: Code.AlreadyExists,
  PERMISSION_DENIED: Code.PermissionDenied,
  RESOURCE_EXHAUSTED: Code.ResourceExhausted,
  FAILED_PRECONDITION: Code.FailedPrecondition,
  ABORTED: Code.Aborted,
  OUT_OF_RANGE: Code.OutOfRange,
  UNIMPLEMENTED: Code.Unimplemented,
  INTERNAL: Code.Internal,
  UNAVAILABLE: Code.Unavailable,
  DATA_LOSS: Code.DataLoss,
  UNAUTHENTICATED: Code.Unauthenticated,
};

/** A BatchPredict item's error as the DspyGrpcError a Predict call would have thrown. */
export function itemError(error: ItemError): DspyGrpcError {
  return new DspyGrpcError(CODES[error.code as StatusName] ?? Code.Unknown, error.message, {
    reason: error.reason,
    domain: "dspy-grpc",
    metadata: { ...error.metadata },
    fieldViolations: error.fieldViolations.map((v) => ({ field: v.field, description: v.description })),
    requestId: error.metadata["request_id"],
  });
}

/** One BatchPredict result: the item's prediction, or why it failed. */
export type BatchItem<O> =
  | { index: number; prediction: Prediction<O>; error?: undefined }
  | { index: number; prediction?: undefined; error: DspyGrpcError | Error };
