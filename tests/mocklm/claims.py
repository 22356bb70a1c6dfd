"""A scripted multi-hop task where retrieval decides the score, for optimizing multi-hop programs.

Claims name a person ("Ada Falk was a poet born in Lowmere in 1801."); the answer is the title of
that person's page in the generated corpus. The mock plays the tutorial's two predictors:

* ``generate_query`` (outputs ``query``) writes a useful query — the person's name — only when the
  prompt "knows the task": it carries a demo (an assistant turn) or :data:`GOOD_INSTRUCTION`, or the
  request names the :data:`TEACHER_MODEL` (the strong teacher of DSPy's tutorial). Otherwise it
  writes "Nothing.", which BM25 scores 0 against every page.
* ``append_notes`` (outputs ``new_notes`` and ``titles``) honestly reads its ``context`` (the
  retriever's {text: score} object): the titles of passages with a positive score whose title
  starts with the person's name.

So a program finds the page exactly when an optimizer taught ``generate_query`` its task.
"""

from __future__ import annotations

import json
import re

from .auto_answer import auto_answer, last_user_text, text_of
from .server import MockReply, RecordedRequest

GOOD_INSTRUCTION = "Search for the person the claim names: write their full name as the query."
#: The provider model name of the teacher deployment.
TEACHER_MODEL = "mock-teacher"
CLAIM = re.compile(r"\[\[ ## claim ## \]\]\n(.+?) was a ")
CONTEXT = re.compile(r"\[\[ ## context ## \]\]\n(\{.*?\})\n\n", re.DOTALL)


def examples(corpus: list[str], count: int, *, start: int = 0) -> list[dict[str, str]]:
    """Claims about people whose name appears on exactly one person page of ``corpus``."""

    people: dict[str, list[str]] = {}
    for text in corpus:
        title, _, body = text.partition(" | ")
        name = body.split(" was a ")[0] if " was a " in body else ""
        if name and title.startswith(name):
            people.setdefault(name, []).append(text)
    unique = [(name, pages[0]) for name, pages in people.items() if len(pages) == 1]
    rows = []
    for name, page in unique[start:start + count]:
        title, _, body = page.partition(" | ")
        rows.append({"claim": body.split(". ")[0] + ".", "answer": title})
    return rows


def _fields(answer: dict) -> str:
    return "".join(f"[[ ## {k} ## ]]\n{v if isinstance(v, str) else json.dumps(v)}\n\n"
                   for k, v in answer.items()) + "[[ ## completed ## ]]"


def reply_text(request: RecordedRequest) -> str:
    body = request.json or {}
    messages = body.get("messages") or []
    system = "\n".join(text_of(m) for m in messages if m.get("role") == "system")
    if "proposed_instruction" in system:
        outputs = {"proposed_instruction": GOOD_INSTRUCTION}
        if "proposed_prefix_for_output_field" in system:
            outputs["proposed_prefix_for_output_field"] = "Query:"
        return _fields(outputs)
    user = last_user_text(messages)
    claim = CLAIM.search(user)
    if claim is None:
        return auto_answer(body)
    name = claim.group(1)
    if "`query`" in system and "`titles`" not in system:
        knows = (any(m.get("role") == "assistant" for m in messages) or GOOD_INSTRUCTION in system
                 or body.get("model") == TEACHER_MODEL)
        return _fields({"reasoning": "Find the page.", "query": name if knows else "Nothing."})
    if "`titles`" in system:
        context = CONTEXT.search(user)
        scored = json.loads(context.group(1)) if context else {}
        titles = [text.partition(" | ")[0] for text, score in scored.items()
                  if score > 0 and text.startswith(name)]
        notes = [f"{name} has a page." ] if titles else []
        return _fields({"reasoning": "Read the passages.", "new_notes": notes, "titles": titles})
    return auto_answer(body)


def install(server) -> None:
    """Make ``server`` (a MockLMServer) answer with this task by default."""

    server.default_reply = MockReply(text=reply_text)
