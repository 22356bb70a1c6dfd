"""A scripted task where only demos of the right kind help: for testing KNNFewShot.

Questions ask for a sum, a difference or a product, each phrased with its own words ("What is the
sum when you add 3 plus 8?"). The mock answers correctly only when the prompt carries demos (earlier
user/assistant turns) and every demo asks for the same operation as the question; otherwise it
answers "I do not know". Random demos mix operations and fail; the nearest neighbours under the
mock's hashed bag-of-words embeddings share the operation's words and succeed.
"""

from __future__ import annotations

import re

from .auto_answer import auto_answer, last_user_text, text_of
from .server import MockReply, RecordedRequest

TEMPLATES = {
    "add": ("What is the sum when you add {a} plus {b}?", lambda a, b: a + b),
    "subtract": ("What is the difference when you subtract {b} from {a}?", lambda a, b: a - b),
    "multiply": ("What is the product when you multiply {a} times {b}?", lambda a, b: a * b),
}
_PATTERNS = {
    name: re.compile(re.escape(template).replace(r"\{a\}", r"(?P<a>-?\d+)").replace(r"\{b\}", r"(?P<b>-?\d+)"))
    for name, (template, _) in TEMPLATES.items()
}


def question(operation: str, a: int, b: int) -> dict[str, str]:
    template, compute = TEMPLATES[operation]
    return {"question": template.format(a=a, b=b), "answer": str(compute(a, b))}


def examples(count: int, *, start: int = 0) -> list[dict[str, str]]:
    """``count`` deterministic examples cycling through the operations."""

    names = list(TEMPLATES)
    return [question(names[i % 3], (i * 7) % 50 + 10, (i * 13) % 9 + 2) for i in range(start, start + count)]


def operation_of(text: str) -> tuple[str, int, int] | None:
    for name, pattern in _PATTERNS.items():
        found = pattern.search(text)
        if found:
            return name, int(found.group("a")), int(found.group("b"))
    return None


def reply_text(request: RecordedRequest) -> str:
    body = request.json or {}
    messages = body.get("messages") or []
    system = "\n".join(text_of(m) for m in messages if m.get("role") == "system")
    asked = operation_of(last_user_text(messages))
    if asked is None or "`answer`" not in system:
        return auto_answer(body)
    name, a, b = asked
    demos = [operation_of(text_of(m)) for m in messages[1:-1] if m.get("role") == "user"]
    knows = bool(demos) and all(demo is not None and demo[0] == name for demo in demos)
    answer = str(TEMPLATES[name][1](a, b)) if knows else "I do not know"
    return f"[[ ## answer ## ]]\n{answer}\n\n[[ ## completed ## ]]"


def install(server) -> None:
    """Make ``server`` (a MockLMServer) answer with this task by default."""

    server.default_reply = MockReply(text=reply_text)
