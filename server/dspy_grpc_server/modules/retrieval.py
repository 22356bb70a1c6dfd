"""What a ``retrieve`` module reads from: passages, and the search interface the app layer provides.

Modules never touch the store: the app layer hands the engine a :class:`CorpusSearcher` (the one
over stored corpora), as it hands it the KNNFewShot bootstrapper.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class Passage:
    """One retrieved document: its id, text, score (higher is better), metadata and position."""

    id: str
    text: str
    score: float
    metadata: Mapping[str, Any] = field(default_factory=dict)
    index: int = -1

    def to_value(self) -> dict[str, Any]:
        """The passage as a JSON object (what ``retrieve`` modules output in ``passage_details``)."""

        return {"id": self.id, "text": self.text, "score": self.score, "metadata": dict(self.metadata)}


class Retrievers(Protocol):
    """The searches ``retrieve`` modules run that live outside the modules layer."""

    async def search_corpus(self, corpus_id: str, query: str, k: int, mode: str,
                            embed: Callable[[str, str], Awaitable[Sequence[float]]]) -> list[Passage]:
        """The ``k`` best passages of ``corpora/{corpus_id}`` for ``query``, best first; ``mode`` is
        "bm25", "dense" or "hybrid"; ``embed(model, text)`` embeds the query (within the call)."""

    async def search_colbertv2(self, url: str, query: str, k: int, timeout: float | None) -> list[Passage]:
        """The ``k`` best passages from the ColBERTv2 server at ``url`` (one of the allowed URLs)."""
