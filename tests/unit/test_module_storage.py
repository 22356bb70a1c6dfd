"""The stored-spec JSON codec: specs written before the newer module kinds still load."""

from __future__ import annotations

from dspy_grpc_server.modules.build import build_module
from dspy_grpc_server.modules.spec import ChainOfThoughtSpec
from dspy_grpc_server.modules.storage import module_from_dict, module_to_dict

#: A chain_of_thought program as the first release stored it.
STORED_BEFORE = {
    "kind": "chain_of_thought",
    "predictor": {
        "signature": {"fields": [
            {"name": "question", "role": "input", "type": {"kind": "str"}},
            {"name": "answer", "role": "output", "type": {"kind": "str"}, "prefix": "Final:"},
        ], "instructions": "Answer briefly."},
        "adapter": "json",
        "demos": [{"data": {"question": "q", "answer": "a"}, "augmented": True}],
        "lm": {"model": "dummy", "options": {"temperature": 0.2}},
    },
}


def test_a_spec_stored_by_the_first_release_loads_and_writes_back_the_same():
    spec = module_from_dict(STORED_BEFORE)
    assert isinstance(spec, ChainOfThoughtSpec)
    assert spec.predictor.adapter == "json" and spec.predictor.demos[0].augmented
    assert spec.predictor.lm.options.temperature == 0.2
    assert [p.name for p in build_module(spec).predictors()] == ["predict"]
    assert module_to_dict(spec) == STORED_BEFORE


def test_retrieve_loop_and_value_specs_round_trip_through_storage_and_the_wire():
    from dspy_grpc.v1 import module_pb2
    from google.protobuf import json_format

    from dspy_grpc_server.api.convert import module_from_proto, module_to_proto

    wire = {"graph": {
        "steps": [
            {"name": "hops", "inputs": {"q": "inputs.q"}, "module": {"loop": {
                "maxIters": 3, "stopWhen": "done",
                "variables": [{"name": "seen", "update": "hit", "accumulate": "LOOP_ACCUMULATE_APPEND_UNIQUE"},
                              {"name": "last", "update": "hit", "accumulate": "LOOP_ACCUMULATE_LAST",
                               "initialJson": "{\"n\": 1}"}],
                "body": {"steps": [
                    {"name": "search", "inputs": {"query": "inputs.q"},
                     "module": {"retrieve": {"corpus": "corpora/wiki", "k": 4, "mode": "RETRIEVAL_MODE_HYBRID"}}},
                    {"name": "done",
                     "module": {"value": {"operation": "VALUE_OPERATION_CONSTANT", "constantJson": "true"}}}],
                    "outputs": {"hit": "search.passages", "done": "done.value"}}}}},
            {"name": "text", "inputs": {"seen": "hops.seen"},
             "module": {"value": {"operation": "VALUE_OPERATION_TEMPLATE", "template": "Seen: {seen}"}}}],
        "outputs": {"text": "text.value", "last": "hops.last"}}}
    message = json_format.ParseDict(wire, module_pb2.ModuleSpec())
    spec = module_from_proto(message, "module")
    assert module_from_dict(module_to_dict(spec)) == spec
    assert module_to_proto(spec) == message
    loop = spec.steps[0].module
    assert [v.start for v in loop.variables] == [[], {"n": 1}]
    assert loop.body.steps[0].module.mode == "hybrid" and loop.body.steps[0].module.target == "wiki"
    node = build_module(spec)
    assert node.predictors() == [] and node.output_names == ("last", "text")  # a proto map: sorted
