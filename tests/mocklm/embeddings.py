"""Deterministic embeddings for the mock's ``POST /v1/embeddings``: hashed bags of words.

Each lower-cased word (a run of letters, digits or underscores) adds 1 to the coordinate its sha256
picks; the vector is then scaled to length 1. Texts sharing words are near each other (their dot
product is the cosine of their word counts), texts sharing none are orthogonal up to hash collisions.
"""

from __future__ import annotations

import hashlib
import math
import re

DEFAULT_DIMENSIONS = 256
_WORD = re.compile(r"\w+")


def hashed_embedding(text: str, dimensions: int = DEFAULT_DIMENSIONS) -> list[float]:
    vector = [0.0] * dimensions
    for word in _WORD.findall(text.lower()):
        digest = hashlib.sha256(word.encode("utf-8")).digest()
        vector[int.from_bytes(digest[:8], "big") % dimensions] += 1.0
    norm = math.sqrt(sum(x * x for x in vector))
    return [x / norm for x in vector] if norm else vector
