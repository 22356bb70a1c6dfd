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
