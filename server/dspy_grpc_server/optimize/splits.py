"""Seeded train/dev splits of a dataset's example indexes."""

from __future__ import annotations

import random
from dataclasses import dataclass

from ..core.bounds import SEED
from ..core.errors import invalid


@dataclass(frozen=True)
class Split:
    """Shuffle indexes 0..n-1 with ``random.Random(seed)``; the first ``round(n * dev_fraction)``
    shuffled indexes are the dev part, the rest the train part (both returned sorted)."""

    seed: int
    dev_fraction: float

    def validate(self, path: str = "split") -> Split:
        SEED.check(self.seed, f"{path}.seed")
        if not 0.0 < self.dev_fraction < 1.0:
            raise invalid(f"{path}.dev_fraction", "must be strictly between 0 and 1")
        return self

    def parts(self, count: int) -> tuple[list[int], list[int]]:
        """(train indexes, dev indexes) of a dataset with ``count`` examples."""

        order = list(range(count))
        random.Random(self.seed).shuffle(order)
        dev_size = round(count * self.dev_fraction)
        return sorted(order[dev_size:]), sorted(order[:dev_size])

    def part(self, count: int, name: str) -> list[int]:
        train, dev = self.parts(count)
        return train if name == "train" else dev

    def to_dict(self) -> dict[str, float | int]:
        return {"seed": self.seed, "dev_fraction": self.dev_fraction}

    @classmethod
    def from_dict(cls, data: dict) -> Split:
        return cls(int(data["seed"]), float(data["dev_fraction"]))
