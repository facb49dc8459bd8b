"""``exact_k`` — exactly k = (1−d)·L blocks per step, uniformly without replacement.

A fractional k is rounded stochastically (⌊k⌋ or ⌈k⌉, expectation exact), so peak memory is bounded by ⌈k⌉
blocks.
"""

from __future__ import annotations

import math

import numpy as np

from fleetsim.core.schedules.base import DropoutConfig, Schedule, register_schedule, stochastic_round


@register_schedule
class ExactK(Schedule):
    name = "exact_k"

    def step_mask(self, cfg: DropoutConfig, n_blocks: int, round_idx: int, rng: np.random.Generator) -> np.ndarray:
        k = stochastic_round((1.0 - cfg.ratio) * n_blocks, rng)
        mask = np.zeros(n_blocks, dtype=bool)
        mask[rng.choice(n_blocks, size=k, replace=False)] = True
        return mask

    def expected_active(self, cfg: DropoutConfig, n_blocks: int, round_idx: int) -> float:
        return float((1.0 - cfg.ratio) * n_blocks)

    def max_active(self, cfg: DropoutConfig, n_blocks: int) -> int:
        return math.ceil((1.0 - cfg.ratio) * n_blocks - 1e-9)
