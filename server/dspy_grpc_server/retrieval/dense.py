"""Dense search as ``dspy.retrievers.Embeddings`` does it (brute force), and rank fusion for hybrid search.

Vectors are float32, scaled to length 1 (``v / max(|v|, 1e-10)``), scored by their dot product with
the (scaled) query, and the best ``k`` taken with ``numpy.argsort(-scores)``, as DSPy's code does.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: Reciprocal rank fusion's constant (the usual 60).
RRF_K = 60
#: How deep each ranking is read when fusing.
FUSION_DEPTH = 100


def to_bytes(vector: Sequence[float]) -> bytes:
    return np.asarray(vector, dtype="<f4").tobytes()


def normalized(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.maximum(norms, 1e-10)


class DenseIndex:
    """The normalized vectors of a corpus's documents (row i is document i); grows by appending rows."""

    def __init__(self) -> None:
        self.matrix = np.zeros((0, 0), dtype=np.float32)

    @property
    def size(self) -> int:
        return self.matrix.shape[0]

    def add(self, vectors: Sequence[bytes]) -> None:
        if not vectors:
            return
        rows = normalized(np.stack([np.frombuffer(v, dtype="<f4") for v in vectors]).astype(np.float32))
        self.matrix = rows if self.size == 0 else np.vstack([self.matrix, rows])

    @property
    def dimensions(self) -> int:
        return self.matrix.shape[1] if self.size else 0

    def search(self, query: Sequence[float], k: int) -> list[tuple[int, float]]:
        q = normalized(np.asarray([query], dtype=np.float32))
        scores = np.einsum("qd,kd->qk", q, self.matrix, order="C")
        top = np.argsort(-scores, axis=1)[:, :k][0]
        return [(int(i), float(scores[0, i])) for i in top]


def fuse(rankings: Sequence[Sequence[int]], k: int) -> list[tuple[int, float]]:
    """Reciprocal rank fusion: the ``k`` best documents by the sum of 1 / (60 + rank) over the
    rankings (ranks from 1); ties go to the better rank in the first ranking, then the next."""

    scores: dict[int, float] = {}
    ranks: dict[int, list[int]] = {}
    for which, ranking in enumerate(rankings):
        for rank, doc in enumerate(ranking, start=1):
            scores[doc] = scores.get(doc, 0.0) + 1.0 / (RRF_K + rank)
            ranks.setdefault(doc, [len(r) + 1 for r in rankings])[which] = rank
    ordered = sorted(scores, key=lambda doc: (-scores[doc], *ranks[doc]))
    return [(doc, scores[doc]) for doc in ordered[:k]]
