"""Which available devices train in a round."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import numpy as np

__all__ = ["uniform_sample"]

T = TypeVar("T")


def uniform_sample(candidates: Sequence[T], k: int, rng: np.random.Generator) -> list[T]:
    """``k`` candidates drawn uniformly without replacement (all of them if there are at most ``k``),
    in their original order."""
    if len(candidates) <= k:
        return list(candidates)
    picked = np.sort(rng.choice(len(candidates), size=k, replace=False))
    return [candidates[i] for i in picked]
