"""TwoStepAdapter: first-step messages and the extraction signature match DSPy 3.4.1."""

from __future__ import annotations

import dspy

from dspy_grpc_server.adapters import get_adapter
from dspy_grpc_server.adapters.chat import ChatAdapter

from .conftest import _BUILT


def test_two_step_matches_dspy() -> None:
    ref = dspy.TwoStepAdapter(dspy.LM("openai/extractor"))
    ours = get_adapter("two_step")
    for case_id in ("multi_io", "descriptions", "out_int", "constraints"):
        b = _BUILT[case_id]
        demos = [{**b.case.inputs, **b.case.outputs}]
        assert ours.format(b.ours, demos, b.case.inputs) == ref.format(b.ref, demos, b.dspy_values(b.case.inputs))
        ref_sig = ref._create_extractor_signature(b.ref)
        assert ours.extraction_messages(b.ours, "some text") == dspy.ChatAdapter().format(
            ref_sig, [], {"text": "some text"})
        assert ChatAdapter().format(ours.extraction_signature(b.ours), [], {"text": "t"})[0]["content"]
