// The typed layer: signatures, output checks, LM specs, errors (no server), then typed calls against
// the conformance server when DSPY_GRPC_CONFORMANCE_ADDR is set.
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { Code, ConnectError } from "@connectrpc/connect";
import { create, toJson, type JsonValue } from "@bufbuild/protobuf";
import { ValueSchema } from "@bufbuild/protobuf/wkt";
import { FieldRole, TypeKind } from "../src/gen/dspy_grpc/v1/signature_pb.js";
import { BadRequestSchema, ErrorInfoSchema } from "../src/gen/google/rpc/error_details_pb.js";
import {
  DspyClient,
  DspyGrpcError,
  OutputValidationError,
  lmSpec,
  signature,
  t,
  toJsonObject,
  tool,
} from "../src/index.js";
import { ADDRESS_ENV } from "./conformance.js";
import { UsageDimension, UsagePeriod } from "../src/gen/dspy_grpc/v1/usage_pb.js";
import { usageRequest, usageRow } from "../src/usage.js";

const qa = signature({
  inputs: { question: t.string().describe("a trivia question"), context: t.list(t.string()) },
  outputs: { answer: t.string(), confidence: t.float(), label: t.literal("yes", "no"), note: t.optional(t.string()) },
  instructions: "Answer briefly.",
});

describe("signatures", () => {
  test("a typed signature becomes structured fields", () => {
    const proto = qa.toProto();
    assert.equal(proto.instructions, "Answer briefly.");
    assert.deepEqual(
      proto.fields.map((f) => [f.name, f.role, f.type?.kind]),
      [
        ["question", FieldRole.INPUT, TypeKind.STR],
        ["context", FieldRole.INPUT, TypeKind.LIST],
        ["answer", FieldRole.OUTPUT, TypeKind.STR],
        ["confidence", FieldRole.OUTPUT, TypeKind.FLOAT],
        ["label", FieldRole.OUTPUT, TypeKind.LITERAL],
        ["note", FieldRole.OUTPUT, TypeKind.OPTIONAL],
      ],
    );
    assert.equal(proto.fields[0]!.description, "a trivia question");
    assert.deepEqual(proto.fields[4]!.type?.values.map((v) => toJson(ValueSchema, v)), ["yes", "no"]);
  });

  test("outputs are checked against the declared types", () => {
    const ok = qa.parseOutputs({ answer: "Paris", confidence: 0.5, label: "yes", extra: 1 });
    assert.deepEqual(ok, { answer: "Paris", confidence: 0.5, label: "yes", note: null, extra: 1 });
    assert.throws(() => qa.parseOutputs({ answer: "Paris", label: "yes" }), (e: unknown) =>
      e instanceof OutputValidationError && e.path === "confidence");
    assert.throws(() => qa.parseOutputs({ answer: "Paris", confidence: 0.5, label: "maybe" }), (e: unknown) =>
      e instanceof OutputValidationError && e.path === "label" && e.expected === 'Literal["yes", "no"]');
  });

  test("datetime and date fields travel as ISO strings", () => {
    const sig = signature({ inputs: { when: t.datetime() }, outputs: { day: t.date() } });
    assert.deepEqual(sig.toProto().fields.map((f) => f.type?.kind), [TypeKind.DATETIME, TypeKind.DATE]);
    assert.deepEqual(sig.parseOutputs({ day: "2024-01-02" }), { day: "2024-01-02" });
    assert.throws(() => sig.parseOutputs({ day: "soon" }), OutputValidationError);
  });

  test("string signatures keep their text and check the types written in it", () => {
    const sig = signature("question, context: list[str] -> answer: int, tags: list[str], extra: dict[str, Any]");
    assert.equal(sig.toProto().text, "question, context: list[str] -> answer: int, tags: list[str], extra: dict[str, Any]");
    assert.deepEqual(Object.keys(sig.inputs), ["question", "context"]);
    assert.deepEqual(sig.parseOutputs({ answer: 3, tags: ["a"], extra: { x: [1] } }), { answer: 3, tags: ["a"], extra: { x: [1] } });
    assert.throws(() => sig.parseOutputs({ answer: 3.5, tags: [], extra: {} }), (e: unknown) =>
      e instanceof OutputValidationError && e.path === "answer");
    assert.throws(() => sig.parseOutputs({ answer: 3, tags: [1], extra: {} }), (e: unknown) =>
      e instanceof OutputValidationError && e.path === "tags[0]");
    assert.throws(() => signature("no arrow here"), /exactly one "->"/);
  });
});

describe("requests", () => {
  test("LM specs: aliases, options and scripts", () => {
    const alias = lmSpec({ model: "gpt", temperature: 0, maxTokens: 10 });
    assert.equal(alias.source.case, "model");
    assert.equal(alias.options?.maxTokens, 10);
    const scripted = lmSpec({ responses: [{ answer: "Paris" }, "raw text"], auto: true });
    assert.equal(scripted.source.case, "dummy");
    const dummy = scripted.source.value as { responses: { reply: { case: string } }[]; auto: boolean };
    assert.deepEqual(dummy.responses.map((r) => r.reply.case), ["fieldsJson", "text"]);
    assert.equal(dummy.auto, true);
  });

  test("scripted replies kept in typed variables type-check, and are checked to be JSON", () => {
    interface Reply {
      answer: string;
      note?: string;
    }
    const reply: Reply = { answer: "Paris" };
    const replies: Reply[] = [reply, { answer: "Rome", note: "capital of Italy" }];
    const scripted = lmSpec({ responses: replies, rules: [{ contains: "Spain", response: reply }] });
    const dummy = scripted.source.value as { responses: { reply: { value: unknown } }[] };
    assert.equal(dummy.responses[0].reply.value, JSON.stringify({ answer: "Paris" }));  // the exact JSON form
    assert.throws(() => lmSpec({ responses: [{ answer: new Date() }] }), /responses\.answer: Date/);
  });

  test("usage queries: names, periods and dimensions become the request", () => {
    const request = usageRequest(
      { period: "month", groupBy: ["program", "apiKey"], programs: ["qa", "", "programs/x"], start: "2026-01-01" },
      "tok",
    );
    assert.deepEqual(request.programs, ["programs/qa", "", "programs/x"]);
    assert.equal(request.period, UsagePeriod.MONTH);
    assert.deepEqual(request.groupBy, [UsageDimension.PROGRAM, UsageDimension.API_KEY]);
    assert.equal(request.startDay, "2026-01-01");
    assert.equal(request.pageToken, "tok");
    assert.equal(usageRow(undefined).costUsd, 0);
  });

  test("inputs that JSON cannot carry are refused with the field named", () => {
    assert.throws(() => toJsonObject({ question: "ok", when: new Date() }), /inputs\.when: Date/);
    assert.throws(() => toJsonObject({ nested: { n: Number.NaN } }), /inputs\.nested\.n/);
  });

  test("errors carry the rich status details", () => {
    const cause = new ConnectError("bad inputs", Code.InvalidArgument, undefined, [
      { desc: ErrorInfoSchema, value: create(ErrorInfoSchema, { reason: "INVALID_ARGUMENT", domain: "dspy-grpc", metadata: { request_id: "r1" } }) },
      { desc: BadRequestSchema, value: create(BadRequestSchema, { fieldViolations: [{ field: "inputs.question", description: "missing" }] }) },
    ]);
    const error = DspyGrpcError.from(cause);
    assert.equal(error.status, "INVALID_ARGUMENT");
    assert.equal(error.reason, "INVALID_ARGUMENT");
    assert.equal(error.requestId, "r1");
    assert.deepEqual(error.fieldViolations, [{ field: "inputs.question", description: "missing" }]);
    assert.match(error.message, /^INVALID_ARGUMENT: bad inputs \[INVALID_ARGUMENT\] \(inputs.question: missing\)$/);
  });
});

const address = process.env[ADDRESS_ENV];

describe("typed calls against a server", { skip: address ? false : `${ADDRESS_ENV} is not set` }, () => {
  const client = new DspyClient(address ?? "", { timeoutMs: 30_000 });
  after(() => client.close());

  test("the README's hello world", async () => {
    const qa = client.predict("question -> answer");
    const pred = await qa.call({ question: "What is the capital of France?" }, { lm: { responses: [{ answer: "Paris" }] } });
    assert.equal(pred.outputs.answer, "Paris");
  });

  test("queryUsage reports the call just made", async () => {
    await client.predict("question -> answer").call({ question: "Usage?" }, { lm: "dummy" });
    const report = await client.queryUsage({ models: ["dummy"], period: "day", groupBy: ["model"] });
    assert.ok(report.rows.length >= 1);
    for (const row of report.rows) {
      assert.equal(row.model, "dummy");
      assert.match(row.period, /^\d{4}-\d{2}-\d{2}$/);
    }
    const calls = report.rows.reduce((sum, row) => sum + row.calls + row.cacheHits, 0);
    assert.ok(calls >= 1);
    assert.equal(report.total.calls + report.total.cacheHits, calls);
    await assert.rejects(client.queryUsage({ start: "yesterday" }), (error: unknown) => {
      assert.ok(error instanceof DspyGrpcError);
      assert.deepEqual(error.fieldViolations.map((v) => v.field), ["start_day"]);
      return true;
    });
  });

  test("predict with a typed signature", async () => {
    const pred = await client.predict(qa).call(
      { question: "Capital of France?", context: [] },
      { lm: { responses: [{ answer: "Paris", confidence: 0.9, label: "yes" }] } },
    );
    const answer: string = pred.outputs.answer; // typed
    assert.equal(answer, "Paris");
    assert.equal(pred.outputs.note, null);
    assert.equal(pred.usage[0]?.model, "dummy");
  });

  test("chainOfThought adds reasoning", async () => {
    const cot = client.chainOfThought(signature({ inputs: { question: t.string() }, outputs: { answer: t.int() } }));
    const pred = await cot.call({ question: "2 + 2?" }, { lm: { responses: [{ reasoning: "Add.", answer: 4 }] } });
    assert.deepEqual(pred.outputs, { reasoning: "Add.", answer: 4 });
  });

  test("a stored program's outputs are checked against the signature the caller expects", async () => {
    const id = `ts-typed-${Date.now().toString(36)}`;
    const stored = client.predict("question -> answer", { lm: { responses: [{ answer: "four" }] } });
    await client.createProgram(id, stored, { displayName: "typed test" });
    try {
      const expectsNumber = signature({ inputs: { question: t.string() }, outputs: { answer: t.int() } });
      await assert.rejects(client.program(id, expectsNumber).call({ question: "?" }), (e: unknown) =>
        e instanceof OutputValidationError && e.path === "answer");
      const untyped = await client.program(id).call({ question: "?" });
      assert.equal(untyped.outputs["answer"], "four");
      assert.equal(untyped.revisionId, "r0001");
    } finally {
      await client.deleteProgram(id);
    }
  });

  test("react runs its tools here, as async functions", async () => {
    const seen: number[][] = [];
    const agent = client.react(signature({ inputs: { question: t.string() }, outputs: { answer: t.int() } }), {
      tools: {
        multiply: tool("Multiply two numbers.", { a: t.int(), b: t.int() }, async ({ a, b }) => {
          seen.push([a, b]);
          return a * b;
        }),
      },
      maxIters: 3,
    });
    const pred = await agent.call({ question: "6 times 7?" }, {
      lm: {
        responses: [
          { next_thought: "Multiply.", next_tool_name: "multiply", next_tool_args: { a: 6, b: 7 } },
          { next_thought: "Done.", next_tool_name: "finish", next_tool_args: {} },
          { reasoning: "6 * 7 = 42", answer: 42 },
        ],
      },
    });
    assert.deepEqual(seen, [[6, 7]]);
    assert.equal(pred.outputs.answer, 42);
    assert.equal(pred.outputs.trajectory["observation_0"], 42);
  });

  test("stream yields the answer's text, then the typed prediction", async () => {
    const qa = client.predict(signature({ inputs: { question: t.string() }, outputs: { answer: t.string() } }));
    let text = "";
    let answer: string | undefined;
    // The question carries a fresh id: a cached completion streams no deltas.
    for await (const event of qa.stream({ question: `ts stream ${Date.now()}` }, { lm: "mock" })) {
      if (event.case === "fieldDelta" && event.value.field === "answer") text += event.value.text;
      if (event.case === "prediction") answer = event.value.outputs.answer;
    }
    assert.ok(answer?.startsWith("mock answer for: ts stream"), answer);
    assert.equal(text, answer);
  });

  test("values keep their key order and integers, in inputs, demos, outputs and tool calls", async () => {
    // tests/parity/test_exact_values_parity.py shows these bytes are DSPy 3.4.1's for the same values.
    type Values = Record<string, JsonValue>;
    const describeIt = client.predict<Values, Values>("data: dict[str, Any], count -> summary: dict[str, Any]", {
      demos: [{ data: { y: 2.5, x: 1 }, count: 2, summary: { b: 1, a: 0.5 } }],
    });
    const inputs = { data: { zeta: 1, alpha: 2.5, mid: [3, { y: 1.5, b: null }] }, count: 1 };
    const rendered = await describeIt.renderPrompt(inputs);
    const contents = rendered.messages.map((m) => m.content);
    assert.ok(contents[1]?.endsWith('[[ ## data ## ]]\n{"y": 2.5, "x": 1}\n\n[[ ## count ## ]]\n2'), contents[1]);
    assert.ok(contents[2]?.includes('[[ ## summary ## ]]\n{"b": 1, "a": 0.5}'), contents[2]);
    assert.ok(contents[3]?.includes('[[ ## data ## ]]\n{"zeta": 1, "alpha": 2.5, "mid": [3, {"y": 1.5, "b": null}]}\n\n' +
      "[[ ## count ## ]]\n1\n\n"), contents[3]);
    const pred = await describeIt.call(inputs, { lm: { responses: [{ summary: { zeta: 1, alpha: 0.5, mid: { y: 1, b: 2 } } }] } });
    const summary = pred.outputs["summary"] as Record<string, unknown>;
    assert.deepEqual(Object.keys(summary), ["zeta", "alpha", "mid"]);
    assert.deepEqual(Object.keys(summary["mid"] as object), ["y", "b"]);

    const seen: unknown[] = [];
    const agent = client.react(signature({ inputs: { question: t.string() }, outputs: { answer: t.string() } }), {
      tools: {
        lookup: tool("Looks things up.", { zeta: t.int(), alpha: t.float() }, async (args) => {
          seen.push(Object.keys(args));
          return { temp: 21, unit: "C", b: 0.5 };
        }),
      },
      maxIters: 3,
    });
    const result = await agent.call({ question: "?" }, {
      lm: {
        responses: [
          { next_thought: "Look.", next_tool_name: "lookup", next_tool_args: { zeta: 1, alpha: 2.5 } },
          { next_thought: "Done.", next_tool_name: "finish", next_tool_args: {} },
          { reasoning: "r", answer: "a" },
        ],
      },
    });
    assert.deepEqual(seen, [["zeta", "alpha"]]);
    assert.deepEqual(Object.keys(result.outputs.trajectory["observation_0"] as object), ["temp", "unit", "b"]);
  });

  test("failures are DspyGrpcErrors with reason and fields", async () => {
    await assert.rejects(client.program("never-created").call({ question: "?" }), (e: unknown) =>
      e instanceof DspyGrpcError && e.status === "NOT_FOUND" && e.reason === "PROGRAM_NOT_FOUND");
    await assert.rejects(client.predict("question -> answer").call({ query: "?" }, { lm: "dummy" }), (e: unknown) =>
      e instanceof DspyGrpcError && e.fieldViolations.some((v) => v.field === "inputs.question"));
  });
});
