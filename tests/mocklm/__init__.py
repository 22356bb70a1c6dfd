"""A scriptable OpenAI-compatible mock LM server for tests and benchmarks (see :mod:`.server`)."""

from __future__ import annotations

from .auto_answer import auto_answer
from .server import MockLMServer, MockReply, RecordedRequest

__all__ = ["MockLMServer", "MockReply", "RecordedRequest", "auto_answer"]
