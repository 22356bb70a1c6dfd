"""A scripted task whose accuracy depends on the prompt, for testing and benchmarking optimizers.

Questions look like "What is 17 plus 25?". The mock answers correctly only when the prompt "knows
the task": it carries at least one demo (an earlier assistant turn) or instructions containing
:data:`GOOD_INSTRUCTION`. Otherwise it answers "I do not know". So a program's exact-match score
rises from 0 exactly when an optimizer gives it demos or good instructions.

Prompt-proposal requests (the output fields include ``proposed_instruction``) are answered with
:data:`GOOD_INSTRUCTION`; any other DSPy prompt gets the mock's automatic answer.

Two-step programs: a predictor that also takes a ``draft`` input (e.g. ``question, draft -> answer``,
checking an earlier step's answer) answers correctly only when it knows the task *and* the draft is
the right sum. So a pipeline "draft, then verify" scores only when both predictors were optimized.
"""

from __future__ import annotations

import re

from .auto_answer import auto_answer, last_user_text, text_of
from .server import MockReply, RecordedRequest

GOOD_INSTRUCTION = "Add the two numbers in the question and answer with the sum only."
QUESTION = re.compile(r"What is (-?\d+) plus (-?\d+)\?")
DRAFT = re.compile(r"\[\[ ## draft ## \]\]\n(.*?)(?:\n\n|\Z)", re.DOTALL)


def question(a: int, b: int) -> str:
    return f"What is {a} plus {b}?"


def examples(count: int, *, start: int = 0) -> list[dict[str, str]]:
    """``count`` deterministic examples ``{"question": ..., "answer": ...}``."""

    out = []
    for i in range(start, start + count):
        a, b = (i * 7) % 50 + 1, (i * 13) % 40 + 2
        out.append({"question": question(a, b), "answer": str(a + b)})
    return out


def _fields(answer: dict[str, str]) -> str:
    return "".join(f"[[ ## {k} ## ]]\n{v}\n\n" for k, v in answer.items()) + "[[ ## completed ## ]]"


def reply_text(request: RecordedRequest) -> str:
    body = request.json or {}
    messages = body.get("messages") or []
    system = "\n".join(text_of(m) for m in messages if m.get("role") == "system")
    if "proposed_instruction" in system:
        outputs = {"proposed_instruction": GOOD_INSTRUCTION}
        if "proposed_prefix_for_output_field" in system:
            outputs["proposed_prefix_for_output_field"] = "Answer:"
        return _fields(outputs)
    found = QUESTION.search(last_user_text(messages))
    if found is None or "`answer`" not in system:
        return auto_answer(body)
    knows = any(m.get("role") == "assistant" for m in messages) or GOOD_INSTRUCTION in system
    total = str(int(found.group(1)) + int(found.group(2)))
    if "`draft`" in system:
        draft = DRAFT.search(last_user_text(messages))
        knows = knows and draft is not None and draft.group(1).strip() == total
    answer = total if knows else "I do not know"
    outputs = {"answer": answer}
    if "[[ ## reasoning ## ]]" in system:
        outputs = {"reasoning": "Adding the numbers." if knows else "Unsure.", **outputs}
    return _fields(outputs)


def install(server) -> None:
    """Make ``server`` (a MockLMServer) answer with this task by default."""

    server.default_reply = MockReply(text=reply_text)
