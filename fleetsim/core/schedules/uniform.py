"""``uniform`` — LayerDrop (Fan et al. 2019): each block dropped independently with probability d."""

from __future__ import annotations

import numpy as np

from fleetsim.core.schedules.base import BernoulliSchedule, DropoutConfig, register_schedule


@register_schedule
class Uniform(BernoulliSchedule):
    name = "uniform"

    def drop_probs(self, cfg: DropoutConfig, n_blocks: int, round_idx: int) -> np.ndarray:
        return np.full(n_blocks, cfg.ratio)

    def expected_active(self, cfg: DropoutConfig, n_blocks: int, round_idx: int) -> float:
        return float((1.0 - cfg.ratio) * n_blocks)
