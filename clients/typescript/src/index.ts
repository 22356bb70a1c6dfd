// dspy-grpc for TypeScript: run DSPy modules and stored programs on a dspy-grpc server, with typed
// inputs and outputs. The generated messages and service descriptors are under "@dspy-grpc/client/gen/...".
export { DspyClient, DEFAULT_ADDRESS, type ClientOptions, type ModuleLike, type ProgramFields } from "./client.js";
export {
  Module,
  moduleSpec,
  reactSpec,
  tool,
  adapterKind,
  type AdapterLike,
  type BatchOptions,
  type CallOptions,
  type ParsedCompletion,
  type PredictorOptions,
  type ReActOptions,
  type ToolDefinition,
  type RpcOptions,
} from "./module.js";
export { Signature, signature, withReasoning, type Fields, type InferFields, type Inputs, type Outputs } from "./signature.js";
export { FieldType, OutputValidationError, t, typeFromAnnotation, type Infer } from "./types.js";
export { lmSpec, type LMLike, type LMOptions, type ScriptedReply } from "./lm.js";
export { DspyGrpcError, type FieldViolation, type StatusName } from "./errors.js";
export { Prediction, Program, RenderedPrompt, type Usage } from "./results.js";
export { toJsonObject } from "./values.js";
export { Budget, MICROS_PER_USD, type BudgetPeriodName, type BudgetSubject } from "./budgets.js";
export { AsyncQueue, type BatchItem, type StreamEvent, type Tool, type Tools } from "./streams.js";
