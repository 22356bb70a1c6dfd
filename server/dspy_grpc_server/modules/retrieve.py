"""The ``retrieve`` module: a query in, the ``k`` best passages out (``dspy.Retrieve`` and the
tutorials' ``search(query, k)``)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from ..core.errors import FailedPrecondition, invalid
from ..core.signature import Field, Role
from ..core.types import STR
from ..lm.types import Usage
from .context import RunContext
from .events import RetrievalFinished
from .node import Node
from .prediction import RETRIEVAL_ADAPTER, TraceStep
from .predictor import NamedPredictor
from .retrieval import Passage
from .spec import LMChoice, RetrieveSpec
from .tools import ToolError

QUERY = "query"
#: The outputs, in order.
OUTPUTS = ("passages", "scored_passages", "hits")


class RetrieveNode(Node):
    kind = "retrieve"

    def __init__(self, name: str, spec: RetrieveSpec) -> None:
        super().__init__(name)
        self.spec = spec

    @property
    def input_fields(self) -> tuple[Field, ...]:
        return (Field(QUERY, Role.INPUT, STR),)

    @property
    def output_names(self) -> tuple[str, ...]:
        return OUTPUTS

    def predictors(self) -> list[NamedPredictor]:
        return []

    def needs_caller_tools(self) -> tuple[str, ...]:
        return (self.spec.target,) if self.spec.source == "caller_tool" else ()

    @property
    def label(self) -> str:
        """What the trace shows as the step's model: the corpus, the URL or the caller's tool."""

        if self.spec.source == "corpus":
            return f"corpora/{self.spec.target}"
        if self.spec.source == "caller_tool":
            return f"tool:{self.spec.target}"
        return self.spec.target

    async def forward(self, inputs: Mapping[str, Any], ctx: RunContext, path: str) -> dict[str, Any]:
        query = inputs.get(QUERY)
        if not isinstance(query, str):
            raise invalid(f"{path}.{QUERY}", "must be a string: the search query")
        started = time.perf_counter()
        passages = await self._search(query, ctx)
        outputs = {
            "passages": [p.text for p in passages],
            "scored_passages": {p.text: p.score for p in passages},
            "hits": [p.to_value() for p in passages],
        }
        ctx.record_step(TraceStep(self.name or "self", {QUERY: query, "k": self.spec.k}, outputs, RETRIEVAL_ADAPTER,
                                  self.label, Usage(), time.perf_counter() - started))
        ctx.send(RetrievalFinished(self.name, query, self.spec.k, self.label, tuple(passages)))
        return outputs

    async def _search(self, query: str, ctx: RunContext) -> list[Passage]:
        spec = self.spec
        if spec.source == "caller_tool":
            if ctx.tools is None or not ctx.tools.offers(spec.target):
                raise FailedPrecondition(
                    f"the search tool {spec.target} runs in the caller's process: call InferenceService.Run and "
                    "declare it", reason="TOOLS_UNAVAILABLE", metadata={"tools": spec.target},
                )
            try:
                answer = await ctx.tools.call(uuid.uuid4().hex[:16], spec.target, {QUERY: query, "k": spec.k},
                                              ctx.remaining())
            except ToolError as error:
                raise FailedPrecondition(f"the caller's search tool {spec.target} failed: {error}",
                                         reason="RETRIEVER_FAILED", metadata={"tool": spec.target}) from None
            return caller_passages(answer, spec.target)[: spec.k]
        if ctx.retrievers is None:
            raise FailedPrecondition("this engine has no retrievers: retrieve modules cannot run",
                                     reason="RETRIEVERS_UNAVAILABLE")
        if spec.source == "corpus":
            async def embed(model: str, text: str) -> Sequence[float]:
                response = await ctx.lms.lm_for(LMChoice(model=model)).embed([text], timeout=ctx.remaining())
                ctx.record_usage(response.model or model, response.usage)
                return response.vectors[0]

            return await ctx.retrievers.search_corpus(spec.target, query, spec.k, spec.mode, embed)
        return await ctx.retrievers.search_colbertv2(spec.target, query, spec.k, ctx.remaining())


def caller_passages(answer: Any, tool: str) -> list[Passage]:
    """Passages from a caller's search tool: a list of strings or of {"text", "id"?, "score"?, "metadata"?}."""

    def bad(why: str) -> FailedPrecondition:
        return FailedPrecondition(f"the caller's search tool {tool} answered with {why}; expected a list of "
                                  "passages (strings or objects with \"text\")", reason="RETRIEVER_FAILED",
                                  metadata={"tool": tool})

    if not isinstance(answer, list):
        raise bad(type(answer).__name__)
    passages = []
    for index, item in enumerate(answer):
        if isinstance(item, str):
            passages.append(Passage(str(index), item, 0.0, {}, index))
        elif isinstance(item, Mapping) and isinstance(item.get("text"), str):
            score = item.get("score", 0.0)
            metadata = item.get("metadata", {})
            if isinstance(score, bool) or not isinstance(score, (int, float)) or not isinstance(metadata, Mapping):
                raise bad(f"an item {index} whose score or metadata is malformed")
            passages.append(Passage(str(item.get("id", index)), item["text"], float(score), dict(metadata), index))
        else:
            raise bad(f"item {index} of type {type(item).__name__}")
    return passages
