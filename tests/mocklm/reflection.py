"""The arithmetic task (see :mod:`.arithmetic`) with a reflection LM, for GEPA and SIMBA.

Instructions climb three levels:

* the seed knows nothing (the task answers "I do not know", unless demos are given);
* :data:`PARTIAL_INSTRUCTION` makes the task answer questions whose first number is even (a checking
  step, one with a ``draft`` input: a multiple of 3; it also keeps a right draft, and gets questions
  starting with 1 right when the draft abstains -- which a partial draft, answering "0", does not --
  so the seed program stays on the Pareto frontier and GEPA can merge);
* :data:`arithmetic.GOOD_INSTRUCTION` makes it answer every question.

A reflection request -- DSPy's GEPA ``ProposeInstruction`` prompt (output field ``new_instruction``,
JSON adapter) -- proposes the next level up from its ``current_instruction`` and, at the top level,
the good instruction with one more sentence. Its answer is a JSON object, as DSPy 3.4.1's GEPA asks
the reflection LM for. A SIMBA rule request (DSPy's OfferFeedback, output ``module_advice``) advises
every module it names to follow the good instruction.

With ``sampling_luck`` (for SIMBA), a task request sent at temperature 1.0 without demos still
answers right when the question's first number is a multiple of 3, and demos help only with
questions whose first number has the parity of a demo's: SIMBA's runs then differ from one example
and one program to the next, as a real LM's do, and both of its strategies come into play.

Everything is decided by the request's content, never by arrival order, so concurrent runs get the
same answers.
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


MODULE_NAMES = re.compile(r"\[\[ ## module_names ## \]\]\n(.*?)(?:\n\n\[\[ ## |\n\nRespond with|\Z)", re.DOTALL)


def _chat(outputs: dict) -> str:
    return "".join(f"[[ ## {k} ## ]]\n{v if isinstance(v, str) else json.dumps(v)}\n\n"
                   for k, v in outputs.items()) + "[[ ## completed ## ]]"


def reply_text(request: RecordedRequest, *, sampling_luck: bool = False) -> str:
    body = request.json or {}
    messages = body.get("messages") or []
    system = "\n".join(text_of(m) for m in messages if m.get("role") == "system")
    user = last_user_text(messages)
    if "`module_advice`" in system:
        found = MODULE_NAMES.search(user)
        names = json.loads(found.group(1)) if found else []
        return _chat({"discussion": "The better run knew the task.",
                      "module_advice": {name: GOOD_INSTRUCTION for name in names}})
    question = arithmetic.QUESTION.search(user)
    if sampling_luck and question and "`answer`" in system and GOOD_INSTRUCTION not in system:
        first = int(question.group(1))
        demos = [int(found.group(1)) for m in messages[:-1] if m.get("role") == "user"
                 for found in arithmetic.QUESTION.finditer(text_of(m))]
        if demos:  # a demo helps with questions whose first number has its parity
            knows = any(demo % 2 == first % 2 for demo in demos)
        else:
            knows = body.get("temperature") == 1.0 and first % 3 == 0
        return _chat({"answer": str(first + int(question.group(2))) if knows else "I do not know"})
    if "`new_instruction`" in system:
        found = CURRENT.search(user)
        return json.dumps({"new_instruction": proposal(found.group(1) if found else "")})
    if question is not None and "`draft`" in system and "`answer`" in system:
        # A checking step: it keeps a right draft; otherwise it knows what its instruction teaches
        # (the partial one: questions whose first number is a multiple of 3).
        first, second = int(question.group(1)), int(question.group(2))
        draft = arithmetic.DRAFT.search(user)
        knows = (draft is not None and draft.group(1).strip() == str(first + second)) or GOOD_INSTRUCTION in system \
            or (PARTIAL_INSTRUCTION in system and first % 3 == 0) \
            or (first == 1 and draft is not None and draft.group(1).strip() == "I do not know")
        return _chat({"answer": str(first + second) if knows else "I do not know"})
    if PARTIAL_INSTRUCTION in system and GOOD_INSTRUCTION not in system:
        question = arithmetic.QUESTION.search(user)
        if question is not None and "`answer`" in system:
            first = int(question.group(1))
            answer = str(first + int(question.group(2))) if first % 2 == 0 else "0"
            outputs = {"answer": answer}
            if "[[ ## reasoning ## ]]" in system:
                outputs = {"reasoning": "Adding.", **outputs}
            return "".join(f"[[ ## {k} ## ]]\n{v}\n\n" for k, v in outputs.items()) + "[[ ## completed ## ]]"
    return arithmetic.reply_text(request)


def install(server, *, sampling_luck: bool = False) -> None:
    """Make ``server`` (a MockLMServer) answer with this task by default."""

    server.default_reply = MockReply(text=lambda request: reply_text(request, sampling_luck=sampling_luck))
