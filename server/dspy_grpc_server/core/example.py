"""Examples: the values of one training row or demo, with which keys are inputs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Example:
    """Field values by name. ``input_keys`` marks the inputs (DSPy's ``with_inputs``); the rest are
    labels. ``augmented`` is True for demos produced by bootstrapping."""

    data: Mapping[str, Any] = field(default_factory=dict)
    input_keys: tuple[str, ...] = ()
    augmented: bool = False

    def inputs(self) -> dict[str, Any]:
        return {key: value for key, value in self.data.items() if key in self.input_keys}

    def labels(self) -> dict[str, Any]:
        return {key: value for key, value in self.data.items() if key not in self.input_keys}

    def as_demo(self) -> dict[str, Any]:
        """The mapping an adapter formats as a demo (DSPy keeps ``augmented`` inside the demo)."""

        demo = dict(self.data)
        if self.augmented:
            demo["augmented"] = True
        return demo
