"""Every module kind through gRPC against a real server and the mock OpenAI-compatible LM."""

from __future__ import annotations

import json

import grpc
import pytest
from dspy_grpc.v1 import inference_pb2, inference_pb2_grpc, program_pb2, program_pb2_grpc
from google.protobuf import json_format

from tests.integration.grpc_helpers import error_details

pytestmark = pytest.mark.asyncio(loop_scope="session")

MOCK = {"model": "mock"}


def chat(**fields) -> str:
    """A ChatAdapter completion with these output fields."""

    parts = [f"[[ ## {name} ## ]]\n{value if isinstance(value, str) else json.dumps(value)}\n\n"
             for name, value in fields.items()]
    return "".join(parts) + "[[ ## completed ## ]]"


def predictor(signature: str, **extra) -> dict:
    return {"signature": {"text": signature}, **extra}


async def predict(channel, module: dict, inputs: dict, **extra):
    stub = inference_pb2_grpc.InferenceServiceStub(channel)
    request = json_format.ParseDict({"module": module, "inputs": inputs, "lm": MOCK, **extra},
                                    inference_pb2.PredictRequest())
    return (await stub.Predict(request, timeout=20)).prediction


def outputs(prediction) -> dict:
    return json_format.MessageToDict(prediction.outputs)


async def test_react_uses_the_builtin_calculator_and_extracts_the_answer(channel, mock_lm):
    mock_lm.enqueue(
        chat(next_thought="Compute it.", next_tool_name="calculator", next_tool_args={"expression": "(2 + 3) * 4"}),
        chat(next_thought="I have it.", next_tool_name="finish", next_tool_args={}),
        chat(reasoning="The calculator said 20.", answer="20"),
    )
    module = {"react": {"predictor": predictor("question -> answer"), "tools": [{"name": "calculator",
                                                                              "builtin": "calculator"}]}}
    prediction = await predict(channel, module, {"question": "What is (2+3)*4?"}, includeTrace=True)
    result = outputs(prediction)
    assert result["answer"] == "20"
    assert result["trajectory"]["observation_0"] == 20
    assert result["trajectory"]["observation_1"] == "Completed."
    assert [step.predictor for step in prediction.trace] == ["react", "react", "extract.predict"]
    first, second = mock_lm.completion_requests[0], mock_lm.completion_requests[1]
    system = first.messages[0]["content"]
    assert "(1) calculator, whose description is <desc>Evaluates an arithmetic expression" in system
    assert "(2) finish, whose description is" in system
    # The second step sees the first step's thought, tool call and observation in its trajectory.
    assert ("[[ ## observation_0 ## ]]\n20" in second.last_user_text
            and '[[ ## tool_args_0 ## ]]\n{"expression": "(2 + 3) * 4"}' in second.last_user_text)


async def test_an_unknown_tool_name_becomes_an_observation_for_the_lm(channel, mock_lm):
    mock_lm.enqueue(
        chat(next_thought="Search.", next_tool_name="web_search", next_tool_args={"q": "x"}),
        chat(next_thought="Done.", next_tool_name="finish", next_tool_args={}),
        chat(reasoning="r", answer="a"),
    )
    module = {"react": {"predictor": predictor("question -> answer"), "tools": [{"name": "calculator",
                                                                              "builtin": "calculator"}]}}
    result = outputs(await predict(channel, module, {"question": "q"}))
    observation = result["trajectory"]["observation_0"]
    assert observation.startswith("Execution error in web_search:") and "calculator, finish" in observation
    assert "[[ ## observation_0 ## ]]\nExecution error in web_search" in mock_lm.completion_requests[1].last_user_text


async def test_a_failing_builtin_tool_is_an_observation_too(channel, mock_lm):
    mock_lm.enqueue(
        chat(next_thought="Divide.", next_tool_name="calculator", next_tool_args={"expression": "1/0"}),
        chat(next_thought="Done.", next_tool_name="finish", next_tool_args={}),
        chat(reasoning="r", answer="undefined"),
    )
    module = {"react": {"predictor": predictor("question -> answer"), "tools": [{"name": "calculator",
                                                                              "builtin": "calculator"}]}}
    result = outputs(await predict(channel, module, {"question": "1/0?"}))
    assert result["trajectory"]["observation_0"] == "Execution error in calculator: division by zero"


async def test_react_with_a_caller_tool_needs_run(channel, mock_lm):
    module = {"react": {"predictor": predictor("question -> answer"), "tools": [{"name": "lookup"}]}}
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await predict(channel, module, {"question": "q"})
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_details(caught.value)["reason"] == "TOOLS_UNAVAILABLE"
    assert mock_lm.completion_requests == []


async def test_multi_chain_comparison_compares_the_given_attempts(channel, mock_lm):
    mock_lm.enqueue(chat(rationale="Both say 4.", answer="4"))
    module = {"multiChainComparison": {"predictor": predictor("question -> answer"), "m": 2}}
    completions = [{"reasoning": "2+2 is 4\nsecond line", "answer": "4"}, {"rationale": "Adding.", "answer": "5"}]
    result = outputs(await predict(channel, module, {"question": "2+2?", "completions": completions}))
    assert result == {"rationale": "Both say 4.", "answer": "4"}
    sent = mock_lm.last_request
    assert sent.json["temperature"] == 0.7
    user = sent.last_user_text
    assert "[[ ## reasoning_attempt_1 ## ]]\n«I'm trying to 2+2 is 4 I'm not sure but my prediction is 4»" in user
    assert "[[ ## reasoning_attempt_2 ## ]]\n«I'm trying to Adding. I'm not sure but my prediction is 5»" in user
    assert "`rationale`" in sent.messages[0]["content"]


async def test_multi_chain_comparison_runs_its_generator_when_no_attempts_are_given(channel, mock_lm):
    module = {"multiChainComparison": {"predictor": predictor("question -> answer"), "m": 3,
                                       "generator": {"chainOfThought": {"predictor": predictor("question -> answer")}}}}
    prediction = await predict(channel, module, {"question": "q"}, includeTrace=True)
    assert set(outputs(prediction)) == {"rationale", "answer"}
    assert sorted(step.predictor for step in prediction.trace) == ["generator.predict"] * 3 + ["predict"]
    assert sorted(r.json["temperature"] for r in mock_lm.completion_requests) == [0.7, 1.0, 1.0, 1.0]


async def test_best_of_n_stops_at_the_first_attempt_reaching_the_threshold(channel, mock_lm):
    mock_lm.enqueue(chat(answer="London"), chat(answer="Paris."), chat(answer="Paris"))
    module = {"bestOfN": {"module": {"predict": {"predictor": predictor("question -> answer")}}, "n": 3,
                          "reward": {"exactMatch": {"field": "answer", "values": ["paris"]}}, "threshold": 1.0}}
    prediction = await predict(channel, module, {"question": "Capital of France?"}, includeTrace=True)
    assert outputs(prediction) == {"answer": "Paris."}
    assert len(mock_lm.completion_requests) == 2
    assert {r.json["temperature"] for r in mock_lm.completion_requests} == {1.0}
    assert [step.predictor for step in prediction.trace] == ["module"]  # the best attempt's trace, as DSPy keeps
    assert prediction.usage[0].calls == 2


async def test_best_of_n_returns_the_best_attempt_scored_by_an_lm_judge(channel, mock_lm):
    mock_lm.add_rule("[[ ## answer ## ]]\nshort", chat(score="0.9"))
    mock_lm.add_rule("[[ ## answer ## ]]\nlong", chat(score="0.2"))
    mock_lm.add_rule("[[ ## question ## ]]\nq", chat(answer="long answer"), times=1)
    mock_lm.add_rule("[[ ## question ## ]]\nq", chat(answer="short"), times=1)
    judge = {"judge": predictor("question, answer -> score: float")}
    module = {"bestOfN": {"module": {"predict": {"predictor": predictor("question -> answer")}}, "n": 2,
                          "reward": {"lmJudge": judge}, "threshold": 1.0}}
    assert outputs(await predict(channel, module, {"question": "q"})) == {"answer": "short"}


async def test_best_of_n_takes_any_metric_as_its_reward(channel, mock_lm):
    """Rewards are the metric system: a weighted token F1 + contains reward, labels from the inputs."""

    mock_lm.enqueue(chat(answer="Lyon"), chat(answer="the city of Paris"), chat(answer="Paris"))
    reward = {"metric": {"weighted": {"terms": [
        {"weight": 1, "metric": {"tokenF1": {"field": "answer", "labelField": "expected"}}},
        {"weight": 1, "metric": {"contains": {"field": "answer", "labelField": "expected"}}},
    ]}}}
    module = {"bestOfN": {"module": {"predict": {"predictor": predictor("question, expected -> answer")}}, "n": 3,
                          "reward": reward, "threshold": 1.0}}
    prediction = await predict(channel, module, {"question": "Capital of France?", "expected": "Paris"})
    assert outputs(prediction) == {"answer": "Paris"}  # "the city of Paris" contains it but has F1 0.5
    assert len(mock_lm.completion_requests) == 3
    programs = program_pb2_grpc.ProgramServiceStub(channel)
    created = await programs.CreateProgram(json_format.ParseDict(
        {"programId": "metric-reward", "program": {"module": module}}, program_pb2.CreateProgramRequest()))
    stored = json_format.MessageToDict(created.module)["bestOfN"]["reward"]
    assert stored == reward


async def test_a_reward_metric_naming_an_unknown_input_is_rejected(channel):
    programs = program_pb2_grpc.ProgramServiceStub(channel)
    module = {"bestOfN": {"module": {"predict": {"predictor": predictor("question -> answer")}}, "n": 2,
                          "reward": {"metric": {"numeric": {"field": "answer", "labelField": "gold"}}}}}
    request = json_format.ParseDict({"programId": "bad-metric-reward", "program": {"module": module}},
                                    program_pb2.CreateProgramRequest())
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await programs.CreateProgram(request)
    assert "program.module.best_of_n.reward.numeric.label_field" in error_details(caught.value)["violations"]


async def test_refine_gives_the_next_attempt_the_feedback_as_a_hint(channel, mock_lm):
    mock_lm.enqueue(
        chat(answer="London"),
        chat(discussion="The module answered the wrong city.", advice={"module": "Answer Paris."}),
        chat(answer="Paris"),
    )
    module = {"refine": {"module": {"predict": {"predictor": predictor("question -> answer")}}, "n": 3,
                         "reward": {"exactMatch": {"field": "answer", "values": ["Paris"]}}, "threshold": 1.0}}
    assert outputs(await predict(channel, module, {"question": "Capital of France?"})) == {"answer": "Paris"}
    feedback, retry = mock_lm.completion_requests[1], mock_lm.completion_requests[2]
    assert "`advice` (dict[str, str])" in feedback.messages[0]["content"]
    assert "[[ ## module_names ## ]]\n[\n  \"module\"\n]" in feedback.last_user_text
    assert "[[ ## hint_ ## ]]\nAnswer Paris." in retry.last_user_text


async def test_parallel_runs_every_item_and_reports_failed_ones(channel, mock_lm):
    module = {"parallel": {"module": {"predict": {"predictor": predictor("question -> answer")}}, "numThreads": 2}}
    items = [{"question": "a"}, {"question": "b"}, {"wrong": "c"}]
    result = outputs(await predict(channel, module, {"items": items}))
    assert result["results"][0] == {"answer": "mock answer for: a"}
    assert result["results"][1] == {"answer": "mock answer for: b"}
    assert result["results"][2] is None
    assert result["errors"][0]["index"] == 2 and result["errors"][0]["reason"] == "INVALID_ARGUMENT"


async def test_majority_returns_the_most_common_normalized_answer(channel, mock_lm):
    mock_lm.enqueue(chat(answer="Paris"), chat(answer="London"), chat(answer="the paris!"))
    module = {"majority": {"module": {"predict": {"predictor": predictor("question -> answer")}}, "n": 3}}
    assert outputs(await predict(channel, module, {"question": "q"}))["answer"] in ("Paris", "the paris!")
    assert len(mock_lm.completion_requests) == 3


GRAPH = {"graph": {
    "steps": [
        {"name": "generate", "module": {"chainOfThought": {"predictor": predictor("question -> answer")}},
         "inputs": {"question": "inputs.question"}},
        {"name": "critique", "module": {"predict": {"predictor": predictor("question -> critique")}},
         "inputs": {"question": "inputs.question"}},
        {"name": "summarize", "module": {"predict": {"predictor": predictor("answer, critique -> summary")}},
         "inputs": {"answer": "generate.answer", "critique": "critique.critique"}},
    ],
    "outputs": {"summary": "summarize.summary", "answer": "generate.answer"},
}}


async def test_a_graph_program_feeds_outputs_into_later_steps(channel, mock_lm):
    programs = program_pb2_grpc.ProgramServiceStub(channel)
    await programs.CreateProgram(json_format.ParseDict({"programId": "pipeline", "program": {"module": GRAPH}},
                                                       program_pb2.CreateProgramRequest()))
    stub = inference_pb2_grpc.InferenceServiceStub(channel)
    request = json_format.ParseDict({"program": "programs/pipeline", "inputs": {"question": "Why?"}, "lm": MOCK,
                                     "includeTrace": True}, inference_pb2.PredictRequest())
    prediction = (await stub.Predict(request, timeout=20)).prediction
    assert outputs(prediction) == {"answer": "mock answer for: Why?",
                                   "summary": "mock summary for: mock answer for: Why?"}
    assert sorted(step.predictor for step in prediction.trace) == ["critique", "generate.predict", "summarize"]
    assert prediction.trace[-1].predictor == "summarize"
    last = mock_lm.completion_requests[-1].last_user_text
    assert "[[ ## critique ## ]]\nmock critique for: Why?" in last


@pytest.mark.parametrize(
    ("steps", "outputs_map", "field", "words"),
    [
        ([{"name": "a", "module": {"predict": {"predictor": predictor("x -> y")}}, "inputs": {"x": "b.y"}},
          {"name": "b", "module": {"predict": {"predictor": predictor("x -> y")}}, "inputs": {"x": "a.y"}}],
         {"y": "b.y"}, "program.module.graph.steps[0].inputs", "cycle"),
        ([{"name": "a", "module": {"predict": {"predictor": predictor("x, z -> y")}}, "inputs": {"x": "inputs.x"}}],
         {"y": "a.y"}, "program.module.graph.steps[0].inputs.z", "not mapped"),
        ([{"name": "a", "module": {"predict": {"predictor": predictor("x -> y")}}, "inputs": {"x": "c.y"}}],
         {"y": "a.y"}, "program.module.graph.steps[0].inputs.x", "no step named"),
        ([{"name": "a", "module": {"predict": {"predictor": predictor("x -> y")}}, "inputs": {"x": "inputs.x"}}],
         {"y": "a.nope"}, "program.module.graph.outputs.y", "not an output"),
    ],
)
async def test_bad_graphs_are_rejected_when_the_program_is_created(channel, steps, outputs_map, field, words):
    programs = program_pb2_grpc.ProgramServiceStub(channel)
    request = json_format.ParseDict(
        {"programId": "bad-graph", "program": {"module": {"graph": {"steps": steps, "outputs": outputs_map}}}},
        program_pb2.CreateProgramRequest(),
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await programs.CreateProgram(request)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    violations = error_details(caught.value)["violations"]
    assert field in violations and words in violations[field]
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await programs.GetProgram(program_pb2.GetProgramRequest(name="programs/bad-graph"))
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND


async def test_bad_module_settings_name_the_field(channel):
    programs = program_pb2_grpc.ProgramServiceStub(channel)
    module = {"bestOfN": {"module": {"predict": {"predictor": predictor("question -> answer")}}, "n": 2,
                          "reward": {"exactMatch": {"field": "score", "values": ["x"]}}}}
    request = json_format.ParseDict({"programId": "bad-reward", "program": {"module": module}},
                                    program_pb2.CreateProgramRequest())
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await programs.CreateProgram(request)
    assert "program.module.best_of_n.reward.exact_match.field" in error_details(caught.value)["violations"]


async def test_the_trace_carries_lm_call_ids_and_cache_hits(channel, mock_lm):
    module = {"predict": {"predictor": predictor("question -> answer")}}
    prediction = await predict(channel, module, {"question": "trace ids?"}, includeTrace=True)
    step = prediction.trace[0]
    assert step.lm_call_ids and step.lm_call_ids[0].startswith("chatcmpl-mock-")
    assert step.cache_hit is False and step.latency.ToNanoseconds() > 0
