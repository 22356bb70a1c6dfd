"""What ``retrieve`` modules search, for the engine: stored corpora and the allowed ColBERTv2 servers.

Programs are checked when they are created or updated: every corpus they name must exist and every
ColBERTv2 URL must be one the server's configuration allows (``[retrieval] colbertv2_urls``), so a
program cannot make the server reach an arbitrary host.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

import httpx

from ..core.errors import FailedPrecondition, NotFound, invalid
from ..modules.build import child_specs
from ..modules.retrieval import Passage
from ..modules.spec import ModuleSpec, RetrieveSpec
from ..retrieval.colbertv2 import colbertv2_search
from .corpora import Corpora


class Retrievers:
    def __init__(self, corpora: Corpora, colbertv2_urls: Sequence[str] = ()) -> None:
        self._corpora = corpora
        self._colbertv2_urls = frozenset(colbertv2_urls)
        self._http: httpx.AsyncClient | None = None

    async def search_corpus(self, corpus_id: str, query: str, k: int, mode: str,
                            embed: Callable[[str, str], Awaitable[Sequence[float]]]) -> list[Passage]:
        return await self._corpora.search(corpus_id, query, k, mode=mode, embed_query=embed)

    async def search_colbertv2(self, url: str, query: str, k: int, timeout: float | None) -> list[Passage]:
        self._allowed(url, "url")
        if self._http is None:
            self._http = httpx.AsyncClient()
        entries = await colbertv2_search(self._http, url, query, k, timeout)
        return [
            Passage(str(entry.get("pid", index)), entry["text"], float(entry.get("score", 0.0)),
                    {key: value for key, value in entry.items() if key not in ("text", "pid", "score")}, index)
            for index, entry in enumerate(entries)
        ]

    def _allowed(self, url: str, field: str) -> None:
        if url not in self._colbertv2_urls:
            raise FailedPrecondition(
                f"the ColBERTv2 URL {url!r} is not one of the server's [retrieval] colbertv2_urls",
                reason="RETRIEVER_NOT_ALLOWED", metadata={"url": url, "field": field},
            )

    async def check(self, module: ModuleSpec, path: str) -> None:
        """Every corpus ``module`` reads exists and every ColBERTv2 URL is allowed (INVALID_ARGUMENT
        naming the field otherwise)."""

        for at, spec in child_specs(module, path):
            if not isinstance(spec, RetrieveSpec):
                continue
            field = f"{at}.retrieve.{spec.source}"
            if spec.source == "corpus":
                try:
                    corpus = await self._corpora.get(spec.target)
                except NotFound:
                    raise invalid(field, f"there is no corpus 'corpora/{spec.target}': create it first") from None
                if spec.mode != "bm25" and not corpus.embedding_model:
                    raise invalid(f"{at}.retrieve.mode", f"corpora/{spec.target} has no embedding model: "
                                  "it can only be searched with BM25")
            elif spec.source == "colbertv2_url" and spec.target not in self._colbertv2_urls:
                raise invalid(field, f"{spec.target!r} is not one of the server's [retrieval] colbertv2_urls")

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None
