// Runs the language-neutral scenarios in tests/conformance/scenarios through this client's typed
// layer (see tests/conformance/scenarios.py for the file format).
import { readdirSync, readFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { create, fromJson, toJson, type JsonObject, type JsonValue } from "@bufbuild/protobuf";
import {
  BatchPredictRequestSchema,
  RunStartSchema,
  StreamPredictRequestSchema,
  ParseCompletionRequestSchema,
  ParseCompletionResponseSchema,
  PredictRequestSchema,
  PredictResponseSchema,
  RenderPromptRequestSchema,
  RenderPromptResponseSchema,
} from "../src/gen/dspy_grpc/v1/inference_pb.js";
import {
  CreateProgramRequestSchema,
  DeleteProgramRequestSchema,
  GetProgramRequestSchema,
  ListProgramRevisionsRequestSchema,
  ListProgramRevisionsResponseSchema,
  ProgramSchema,
  UpdateProgramRequestSchema,
} from "../src/gen/dspy_grpc/v1/program_pb.js";
import type { ModuleSpec } from "../src/gen/dspy_grpc/v1/module_pb.js";
import {
  AppendDocumentsRequestSchema,
  AppendDocumentsResponseSchema,
  CorpusSchema,
  CreateCorpusRequestSchema,
} from "../src/gen/dspy_grpc/v1/corpus_pb.js";
import { rpc } from "../src/errors.js";
import { ValueSchema } from "@bufbuild/protobuf/wkt";
import { PredictionSchema } from "../src/gen/dspy_grpc/v1/prediction_pb.js";
import { DspyClient, DspyGrpcError, type Module, type StreamEvent, type Tools } from "../src/index.js";

/** The conformance tools, as TypeScript functions. */
export const TOOLS: Tools = {
  add: (args) => (args["a"] as number) + (args["b"] as number),
  fail: () => {
    throw new Error("failed on purpose");
  },
};

/** The stream summary of tests/conformance/scenarios.py. */
async function summarizeStream(events: AsyncIterable<StreamEvent<JsonObject>>): Promise<JsonObject> {
  const fieldText: Record<string, string> = {};
  const toolCalls: JsonObject[] = [];
  const calls = new Map<string, JsonObject>();
  let prediction: JsonValue = null;
  for await (const event of events) {
    switch (event.case) {
      case "fieldDelta":
        fieldText[event.value.field] = (fieldText[event.value.field] ?? "") + event.value.text;
        break;
      case "toolCallStarted": {
        const call: JsonObject = { tool: event.value.tool, args: event.value.args ?? {} };
        calls.set(event.value.callId, call);
        toolCalls.push(call);
        break;
      }
      case "toolCallFinished": {
        const call = calls.get(event.value.callId) ?? { tool: event.value.tool };
        call["observation"] = event.value.observation ? toJson(ValueSchema, event.value.observation) : null;
        if (event.value.error) call["error"] = event.value.error;
        break;
      }
      case "prediction":
        prediction = toJson(PredictionSchema, event.value.raw);
        break;
    }
  }
  return { fieldText, toolCalls, prediction };
}

export const ADDRESS_ENV = "DSPY_GRPC_CONFORMANCE_ADDR";
const SCENARIO_DIR = new URL("../../../../tests/conformance/scenarios/", import.meta.url);

export interface Step {
  rpc: string;
  request: JsonObject;
  expect?: { response?: JsonValue; error?: { code: string; reason?: string; fieldViolations?: string[] } };
}

export interface Scenario {
  name: string;
  steps: Step[];
}

/** Every scenario, with `{run}` replaced by `runId`. */
export function loadScenarios(runId = "run"): Scenario[] {
  return readdirSync(SCENARIO_DIR)
    .filter((file) => file.endsWith(".json"))
    .sort()
    .map((file) => {
      const text = readFileSync(new URL(file, SCENARIO_DIR), "utf8").replaceAll("{run}", runId);
      return { name: file.slice(0, -".json".length), ...(JSON.parse(text) as { steps: Step[] }) };
    });
}

export function newRunId(): string {
  return "ts" + randomBytes(4).toString("hex");
}

/** Where `actual` differs from `expected` (subset match; `{"$contains": s}` matches strings containing s). */
export function matches(expected: unknown, actual: unknown, path = "response"): string[] {
  if (isObject(expected) && Object.keys(expected).length === 1 && "$contains" in expected) {
    const needle = expected["$contains"] as string;
    return typeof actual === "string" && actual.includes(needle)
      ? []
      : [`${path}: expected a string containing ${JSON.stringify(needle)}, got ${JSON.stringify(actual)}`];
  }
  if (isObject(expected)) {
    if (!isObject(actual)) return [`${path}: expected an object, got ${JSON.stringify(actual)}`];
    return Object.entries(expected).flatMap(([key, value]) =>
      key in actual ? matches(value, actual[key], `${path}.${key}`) : [`${path}.${key}: missing`],
    );
  }
  if (Array.isArray(expected)) {
    if (!Array.isArray(actual) || actual.length !== expected.length) {
      return [`${path}: expected ${expected.length} items, got ${JSON.stringify(actual)}`];
    }
    return expected.flatMap((item, i) => matches(item, actual[i], `${path}[${i}]`));
  }
  return expected === actual ? [] : [`${path}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`];
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

type Target = { case: "program"; value: string } | { case: "module"; value: ModuleSpec } | { case: undefined };

function moduleFor(client: DspyClient, target: Target): Module<JsonObject, JsonObject> {
  if (target.case === "program") return client.program(target.value);
  if (target.case === "module") return client.module(target.value);
  throw new Error("the request names no program or module");
}

/** A request's inputs: its exact form (`inputsJson`) when given, else the Struct. */
function inputsOf(request: { inputs?: JsonObject; inputsJson: string }): JsonObject {
  return request.inputsJson ? (JSON.parse(request.inputsJson) as JsonObject) : (request.inputs ?? {});
}

/** Makes one step's call through the typed layer; returns the response as proto JSON. */
export async function callStep(client: DspyClient, step: Step): Promise<JsonValue> {
  switch (step.rpc) {
    case "InferenceService/Predict": {
      const request = fromJson(PredictRequestSchema, step.request);
      const prediction = await moduleFor(client, request.target).call(inputsOf(request), {
        lm: request.lm,
        includeTrace: request.includeTrace,
      });
      return toJson(PredictResponseSchema, create(PredictResponseSchema, { prediction: prediction.raw }));
    }
    case "InferenceService/StreamPredict": {
      const request = fromJson(StreamPredictRequestSchema, step.request);
      const module = moduleFor(client, request.target);
      return summarizeStream(module.stream(inputsOf(request), { lm: request.lm, includeTrace: request.includeTrace }));
    }
    case "InferenceService/Run": {
      const start = fromJson(RunStartSchema, step.request);
      const request = start.request!;
      const tools = Object.fromEntries(start.tools.map((name) => [name, TOOLS[name]!]));
      const module = moduleFor(client, request.target);
      return summarizeStream(
        module.stream(inputsOf(request), { lm: request.lm, includeTrace: request.includeTrace, tools }),
      );
    }
    case "InferenceService/BatchPredict": {
      const request = fromJson(BatchPredictRequestSchema, step.request);
      const items: JsonObject[] = [];
      const module = moduleFor(client, request.target);
      for await (const item of module.batch(request.inputs, {
        lm: request.lm,
        includeTrace: request.includeTrace,
        maxConcurrency: request.maxConcurrency,
      })) {
        if (item.prediction) {
          items.push({ index: item.index, prediction: toJson(PredictionSchema, item.prediction.raw) });
        } else if (item.error instanceof DspyGrpcError) {
          const error = item.error;
          items.push({
            index: item.index,
            error: { code: error.status, reason: error.reason, fieldViolations: error.fieldViolations.map((v) => v.field) },
          });
        } else {
          throw item.error;
        }
      }
      return { items: items.sort((a, b) => (a["index"] as number) - (b["index"] as number)) };
    }
    case "InferenceService/RenderPrompt": {
      const request = fromJson(RenderPromptRequestSchema, step.request);
      const rendered = await moduleFor(client, request.target).renderPrompt(inputsOf(request), {
        predictor: request.predictor,
        adapter: request.adapter,
      });
      return toJson(RenderPromptResponseSchema, rendered.raw);
    }
    case "InferenceService/ParseCompletion": {
      const request = fromJson(ParseCompletionRequestSchema, step.request);
      const parsed = await moduleFor(client, request.target).parseCompletion(request.completion, {
        predictor: request.predictor,
        adapter: request.adapter,
      });
      return toJson(ParseCompletionResponseSchema, parsed.raw);
    }
    case "ProgramService/CreateProgram": {
      const request = fromJson(CreateProgramRequestSchema, step.request);
      const { displayName, description, labels, module } = request.program!;
      const program = await client.createProgram(request.programId, module!, { displayName, description, labels });
      return toJson(ProgramSchema, program.raw);
    }
    case "ProgramService/GetProgram": {
      const request = fromJson(GetProgramRequestSchema, step.request);
      return toJson(ProgramSchema, (await client.getProgram(request.name)).raw);
    }
    case "ProgramService/UpdateProgram": {
      const request = fromJson(UpdateProgramRequestSchema, step.request);
      const paths = request.updateMask?.paths ?? [];
      const replace = (path: string) => paths.length === 0 || paths.includes(path) || paths.includes("*");
      const p = request.program!;
      const program = await client.updateProgram(p.name, {
        displayName: replace("display_name") ? p.displayName : undefined,
        description: replace("description") ? p.description : undefined,
        labels: replace("labels") ? p.labels : undefined,
        module: replace("module") ? p.module : undefined,
        etag: p.etag,
      });
      return toJson(ProgramSchema, program.raw);
    }
    case "ProgramService/DeleteProgram": {
      const request = fromJson(DeleteProgramRequestSchema, step.request);
      await client.deleteProgram(request.name, { etag: request.etag });
      return {};
    }
    case "ProgramService/ListProgramRevisions": {
      const request = fromJson(ListProgramRevisionsRequestSchema, step.request);
      const programs = [];
      for await (const program of client.listProgramRevisions(request.name)) programs.push(program.raw);
      return toJson(ListProgramRevisionsResponseSchema, create(ListProgramRevisionsResponseSchema, { programs }));
    }
    case "CorpusService/CreateCorpus": {
      const request = fromJson(CreateCorpusRequestSchema, step.request);
      return toJson(CorpusSchema, await rpc(() => client.corpora.createCorpus(request, client.callOptions())));
    }
    case "CorpusService/AppendDocuments": {
      const request = fromJson(AppendDocumentsRequestSchema, step.request);
      async function* one() {
        yield request;
      }
      const response = await rpc(() => client.corpora.appendDocuments(one(), client.callOptions()));
      return toJson(AppendDocumentsResponseSchema, response);
    }
    default:
      throw new Error(`no runner for ${step.rpc}`);
  }
}

/** Runs a scenario; returns what did not match (empty when it passed). */
export async function runScenario(client: DspyClient, scenario: Scenario): Promise<string[]> {
  const problems: string[] = [];
  for (const [index, step] of scenario.steps.entries()) {
    const where = `step ${index} (${step.rpc})`;
    const expect = step.expect ?? {};
    let response: JsonValue;
    try {
      response = await callStep(client, step);
    } catch (error) {
      if (!(error instanceof DspyGrpcError) || !expect.error) {
        return [...problems, `${where}: unexpected error ${error}`];
      }
      const want = expect.error;
      if (error.status !== want.code) problems.push(`${where}: code: expected ${want.code}, got ${error.status}`);
      if (want.reason !== undefined && error.reason !== want.reason) {
        problems.push(`${where}: reason: expected ${want.reason}, got ${error.reason}`);
      }
      const fields = error.fieldViolations.map((v) => v.field);
      const missing = (want.fieldViolations ?? []).filter((f) => !fields.includes(f));
      if (missing.length) problems.push(`${where}: fieldViolations: ${missing} not among ${fields}`);
      continue;
    }
    if (expect.error) problems.push(`${where}: expected ${JSON.stringify(expect.error)}, got a response`);
    else if (expect.response !== undefined) problems.push(...matches(expect.response, response).map((p) => `${where}: ${p}`));
  }
  return problems;
}
