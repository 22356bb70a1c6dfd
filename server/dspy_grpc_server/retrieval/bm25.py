"""BM25 as DSPy's multi-hop tutorial builds it with bm25s: tokenization, settings and the index.

Tokenization happens once per document (when it is appended) and the tokens are stored, so an
index is built from stored tokens without reading the texts again. Scores come from bm25s itself,
so a search returns the same documents and scores as bm25s over the same texts.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from ..core.errors import invalid

#: bm25s's BM25 variants.
METHODS = ("lucene", "robertson", "atire", "bm25l", "bm25+")
MAX_K1 = 10.0

# bm25s logs an INFO line for every query without a known token; that is a normal search here.
logging.getLogger("bm25s").setLevel(logging.WARNING)


@dataclass(frozen=True)
class Bm25Settings:
    """``bm25s.BM25(k1, b, method)`` over ``bm25s.tokenize(stopwords="en" unless keep_stopwords,
    stemmer=Stemmer("english") unless no_stemming)``."""

    k1: float = 1.5
    b: float = 0.75
    method: str = "lucene"
    keep_stopwords: bool = False
    no_stemming: bool = False

    def validate(self, path: str) -> None:
        if not 0 < self.k1 <= MAX_K1:
            raise invalid(f"{path}.k1", f"must be greater than 0 and at most {MAX_K1:g}")
        if not 0 <= self.b <= 1:
            raise invalid(f"{path}.b", "must be between 0 and 1")
        if self.method not in METHODS:
            raise invalid(f"{path}.method", f"must be one of {', '.join(METHODS)}")

    def to_dict(self) -> dict[str, Any]:
        return {"k1": self.k1, "b": self.b, "method": self.method, "keep_stopwords": self.keep_stopwords,
                "no_stemming": self.no_stemming}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Bm25Settings:
        return cls(**{key: data[key] for key in ("k1", "b", "method", "keep_stopwords", "no_stemming") if key in data})


@lru_cache(maxsize=1)
def _stemmer() -> Any:
    import Stemmer  # PyStemmer

    return Stemmer.Stemmer("english")


def tokenize(texts: Sequence[str], settings: Bm25Settings) -> list[list[str]]:
    """Each text's tokens, exactly as ``bm25s.tokenize(..., return_ids=False)`` gives them."""

    import bm25s

    if not texts:
        return []
    tokens = bm25s.tokenize(
        list(texts), stopwords=None if settings.keep_stopwords else "en",
        stemmer=None if settings.no_stemming else _stemmer(), return_ids=False, show_progress=False,
    )
    return [list(doc) for doc in tokens]


class Bm25Index:
    """A bm25s index over tokenized documents (position i in the list is document index i), given as
    token strings, or as token ids with their ``vocabulary`` (token -> id, ids 0..n-1)."""

    def __init__(self, settings: Bm25Settings, documents: Sequence[Sequence[Any]],
                 vocabulary: dict[str, int] | None = None) -> None:
        import bm25s

        self.settings = settings
        self.size = len(documents)
        self._retriever = bm25s.BM25(k1=settings.k1, b=settings.b, method=settings.method)
        if vocabulary is None:
            self._retriever.index([list(doc) for doc in documents], show_progress=False)
        else:
            self._retriever.index((list(documents), vocabulary), show_progress=False)

    def search(self, query: str, k: int) -> list[tuple[int, float]]:
        """The ``k`` best (document index, score) pairs, best first (all documents when fewer)."""

        k = min(k, self.size)
        if k <= 0:
            return []
        tokens = tokenize([query], self.settings)
        documents, scores = self._retriever.retrieve(tokens, k=k, n_threads=1, show_progress=False)
        return [(int(doc), float(score)) for doc, score in zip(documents[0], scores[0])]
