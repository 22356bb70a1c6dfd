// GEPA and SIMBA optimization jobs started and followed through the generated OptimizationService
// client against the server at DSPY_GRPC_CONFORMANCE_ADDR (skipped when it is unset).
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, describe, test } from "node:test";
import { create, fromJson, type JsonObject } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { AppendExamplesRequestSchema, DatasetService } from "../src/gen/dspy_grpc/v1/dataset_pb.js";
import { ExampleSchema } from "../src/gen/dspy_grpc/v1/signature_pb.js";
import { JobState } from "../src/gen/dspy_grpc/v1/job_pb.js";
import { OptimizationSchema, OptimizationService, type Optimization } from "../src/gen/dspy_grpc/v1/optimization_pb.js";
import { CreateProgramRequestSchema, ProgramService } from "../src/gen/dspy_grpc/v1/program_pb.js";
import { ADDRESS_ENV } from "./conformance.js";

const address = process.env[ADDRESS_ENV];
const skip = address ? false : `${ADDRESS_ENV} is not set`;

describe("optimization jobs", { skip }, () => {
  const baseUrl = `http://${address}`;
  const sessions = new Http2SessionManager(baseUrl);
  const transport = createGrpcTransport({ baseUrl, sessionManager: sessions });
  after(() => sessions.abort());
  const run = `tsopt${randomBytes(4).toString("hex")}`;
  const datasets = createClient(DatasetService, transport);
  const jobs = createClient(OptimizationService, transport);
  let ready: Promise<string> | undefined;

  async function setUp(): Promise<string> {
    const dataset = await datasets.createDataset({ datasetId: run, dataset: { inputKeys: ["question"] } });
    const examples = [0, 1, 2, 3].map((i) =>
      fromJson(ExampleSchema, { data: { question: `What is ${i} plus ${i + 1}?`, answer: String(2 * i + 1) } }),
    );
    async function* requests() {
      yield create(AppendExamplesRequestSchema, { dataset: dataset.name, requestId: run, examples });
    }
    await datasets.appendExamples(requests());
    const program = {
      programId: run,
      program: { module: { predict: { predictor: { signature: { text: "question -> answer" }, lm: { model: "mock" } } } } },
    };
    await createClient(ProgramService, transport).createProgram(fromJson(CreateProgramRequestSchema, program));
    return dataset.name;
  }

  async function optimize(settings: JsonObject): Promise<{ last: Optimization; name: string }> {
    ready ??= setUp();
    const dataset = await ready;
    const body = { program: `programs/${run}`, dataset, metric: { exactMatch: {} }, numThreads: 2, ...settings };
    const created = await jobs.createOptimization({ optimization: fromJson(OptimizationSchema, body) });
    let last: Optimization | undefined;
    for await (const message of jobs.watchOptimization({ name: created.name })) {
      last = message.optimization;
    }
    assert.ok(last);
    assert.equal(last.state, JobState.SUCCEEDED, JSON.stringify(last.error));
    assert.ok(last.result?.programRevision);
    return { last, name: created.name };
  }

  test("GEPA runs to its metric-call budget and lists the seed first", async () => {
    const { last, name } = await optimize({ gepa: { maxMetricCalls: 12, reflectionLm: { model: "mock" } } });
    assert.equal(last.progress?.metricCallsBudget, 12n);
    assert.ok((last.progress?.metricCallsUsed ?? 0n) >= 12n);
    const listed = await jobs.listOptimizationCandidates({ parent: name });
    assert.equal(listed.candidates[0].label, "seed");
    assert.deepEqual(listed.candidates[0].parents, []);
    assert.equal(listed.candidates[0].instanceScores.length, 4);
  });

  test("SIMBA validates its finalists", async () => {
    const { name } = await optimize({ simba: { bsize: 2, numCandidates: 2, maxSteps: 1 } });
    const listed = await jobs.listOptimizationCandidates({ parent: name });
    assert.equal(listed.candidates[0].label, "baseline");
  });
});
