"""DSPy's KNNFewShot program: on every call, demos bootstrapped from the training examples nearest
the call's inputs.

``dspy.KNNFewShot(k, trainset, vectorizer, **bootstrap_args).compile(student, teacher=...)`` returns
the student with a forward that (1) embeds the call's inputs as one text, ``"key: value"`` pairs
joined by ``" | "`` in the order the inputs are given, (2) takes the ``k`` training examples whose
vectors have the largest dot product with it, nearest first, (3) runs ``BootstrapFewShot`` over those
``k`` with the teacher and (4) calls the compiled copy. The training texts are built the same way
from each example's input keys (in the example's key order).

Here the optimization job embeds the training examples once and stores their vectors in the spec, so
a call embeds only its own inputs. Vectors are compared as float32 values, as DSPy's numpy code
does; ties in the dot product go to the later training example (a stable ascending sort, reversed).
The bootstrapping itself is the optimizer's (see :class:`~.context.DemoBootstrapper`).
"""

from __future__ import annotations

import asyncio
import operator
from array import array
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from ..core.errors import FailedPrecondition
from ..core.example import Example
from ..core.signature import Field
from .context import RunContext
from .node import Node
from .predictor import NamedPredictor
from .spec import KNNFewShotSpec, LMChoice, ModuleSpec


#: Multiply-adds above which the nearest-neighbour search runs in a thread (about a millisecond inline).
INLINE_SEARCH_LIMIT = 20_000


def joined_text(pairs: Iterable[tuple[str, Any]]) -> str:
    """DSPy's text of a set of fields: ``"key: value"`` joined by ``" | "``."""

    return " | ".join(f"{key}: {value}" for key, value in pairs)


def training_text(example: Example) -> str:
    """The text DSPy embeds for a training example: its input fields, in the example's order."""

    return joined_text((key, value) for key, value in example.data.items() if key in example.input_keys)


def as_float32(vector: Iterable[float]) -> tuple[float, ...]:
    """The vector with each value rounded to float32 (DSPy casts every vector to numpy float32)."""

    return tuple(array("f", vector))


def nearest(vectors: Sequence[Sequence[float]], query: Sequence[float], k: int) -> list[int]:
    """Indexes of the ``k`` vectors with the largest dot product with ``query``, largest first
    (DSPy's ``scores.argsort()[-k:][::-1]``, with ties broken as a stable sort breaks them)."""

    scores = [sum(map(operator.mul, vector, query)) for vector in vectors]
    ascending = sorted(range(len(scores)), key=lambda index: (scores[index], index))
    return ascending[::-1][:k]


class KNNFewShotNode(Node):
    kind = "knn_few_shot"

    def __init__(self, name: str, spec: KNNFewShotSpec, student: Node,
                 build: Callable[[ModuleSpec], Node]) -> None:
        super().__init__(name)
        self.spec = spec
        self.student = student
        self._build = build
        self._vectors = [as_float32(item.embedding) for item in spec.examples]

    @property
    def input_fields(self) -> tuple[Field, ...]:
        return self.student.input_fields

    @property
    def output_names(self) -> tuple[str, ...]:
        return self.student.output_names

    def predictors(self) -> list[NamedPredictor]:
        # DSPy's compiled program is the student itself (reset): same predictor names.
        return self.student.predictors()

    async def neighbours(self, inputs: Mapping[str, Any], ctx: RunContext) -> list[Example]:
        """The ``k`` training examples nearest ``inputs``, nearest first (one embeddings call)."""

        model = self.spec.embedding_model
        response = await ctx.lms.lm_for(LMChoice(model=model)).embed([joined_text(inputs.items())],
                                                                     timeout=ctx.remaining())
        ctx.record_usage(model, response.usage)
        query = as_float32(response.vectors[0])
        expected = len(self._vectors[0])
        if len(query) != expected:
            raise FailedPrecondition(
                f"embedding model {model!r} returned a vector of {len(query)} dimensions; the program's "
                f"training examples were embedded with {expected}: run the KNNFewShot optimization again",
                reason="EMBEDDING_DIMENSIONS_CHANGED", metadata={"model": model},
            )
        if len(self._vectors) * expected > INLINE_SEARCH_LIMIT:  # large: keep the event loop free meanwhile
            found = await asyncio.to_thread(nearest, self._vectors, query, self.spec.k)
        else:
            found = nearest(self._vectors, query, self.spec.k)
        return [self.spec.examples[index].example for index in found]

    async def forward(self, inputs: Mapping[str, Any], ctx: RunContext, path: str) -> dict[str, Any]:
        if ctx.bootstrapper is None:
            raise FailedPrecondition("KNNFewShot programs need the optimizer's bootstrapper, which this engine "
                                     "was built without", reason="KNN_NOT_AVAILABLE")
        trainset = await self.neighbours(inputs, ctx)
        compiled = await ctx.bootstrapper.bootstrap(self.spec, trainset, ctx)
        return await self._build(compiled)(inputs, ctx, path)
