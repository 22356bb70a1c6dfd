"""The arithmetic task (see :mod:`.arithmetic`) with a reflection LM, for GEPA and SIMBA.

Instructions climb three levels:

* the seed knows nothing (the task answers "I do not know", unless demos are given);
* :data:`PARTIAL_INSTRUCTION` makes the task answer questions whose first number is even;
* :data:`arithmetic.GOOD_INSTRUCTION` makes it answer every question.

A reflection request -- DSPy's GEPA ``ProposeInstruction`` prompt (output field ``new_instruction``,
JSON adapter) -- proposes the next level up from its ``current_instruction`` and, at the top level,
the good instruction with one more sentence. Its answer is a JSON object, as DSPy 3.4.1's GEPA asks
the reflection LM for. Everything is decided by the request's content, never by arrival order, so
concurrent runs get the same answers.
"""

from __future__ import annotations

import json
import re

from . import arithmetic
from .auto_answer import last_user_text, text_of
from .server import MockReply, RecordedRequest

PARTIAL_INSTRUCTION = "Add the two numbers in the question."
GOOD_INSTRUCTION = arithmetic.GOOD_INSTRUCTION
CURRENT = re.compile(r"\[\[ ## current_instruction ## \]\]\n(.*?)\n\n\[\[ ## ", re.DOTALL)


def proposal(current: str) -> str:
    if GOOD_INSTRUCTION in current:
        return GOOD_INSTRUCTION + " Double-check the sum."
    if PARTIAL_INSTRUCTION in current:
        return GOOD_INSTRUCTION
    return PARTIAL_INSTRUCTION


def reply_text(request: RecordedRequest) -> str:
    body = request.json or {}
    messages = body.get("messages") or []
    system = "\n".join(text_of(m) for m in messages if m.get("role") == "system")
    user = last_user_text(messages)
    if "`new_instruction`" in system:
        found = CURRENT.search(user)
        return json.dumps({"new_instruction": proposal(found.group(1) if found else "")})
    if PARTIAL_INSTRUCTION in system and GOOD_INSTRUCTION not in system:
        question = arithmetic.QUESTION.search(user)
        if question is not None and "`answer`" in system:
            first = int(question.group(1))
            answer = str(first + int(question.group(2))) if first % 2 == 0 else "I do not know"
            outputs = {"answer": answer}
            if "[[ ## reasoning ## ]]" in system:
                outputs = {"reasoning": "Adding.", **outputs}
            return "".join(f"[[ ## {k} ## ]]\n{v}\n\n" for k, v in outputs.items()) + "[[ ## completed ## ]]"
    return arithmetic.reply_text(request)


def install(server) -> None:
    """Make ``server`` (a MockLMServer) answer with this task by default."""

    server.default_reply = MockReply(text=reply_text)
