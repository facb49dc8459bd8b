"""``pld`` — Progressive Layer Dropping (Zhang & He, NeurIPS 2020).

θ(t) = (1−θ̄)·e^(−γt) + θ̄ over rounds t (the round's index: t = 0 in round 1); block l = 1..L is kept with
probability 1 − (l/L)(1−θ(t)), so deeper blocks are dropped more and dropping grows over rounds.
θ̄ = 1 − 2Ld/(L+1), so the drop ratio tends to d; d can therefore not exceed (L+1)/(2L).
"""

from __future__ import annotations

import math

import numpy as np

from fleetsim.core.schedules.base import BernoulliSchedule, DropoutConfig, register_schedule


def largest_ratio(n_blocks: int) -> float:
    """(L+1)/(2L): the drop ratio PLD tends to when θ̄ = 0."""
    return (n_blocks + 1) / (2 * n_blocks)


@register_schedule
class ProgressiveLayerDropping(BernoulliSchedule):
    name = "pld"

    def check(self, cfg: DropoutConfig, n_blocks: int) -> None:
        if cfg.ratio > largest_ratio(n_blocks):
            raise ValueError(f"at most {largest_ratio(n_blocks):.3f} for pld on {n_blocks} blocks ((L+1)/2L)")

    def drop_probs(self, cfg: DropoutConfig, n_blocks: int, round_idx: int) -> np.ndarray:
        self.check(cfg, n_blocks)
        theta_bar = 1.0 - 2.0 * n_blocks * cfg.ratio / (n_blocks + 1)
        theta = (1.0 - theta_bar) * math.exp(-cfg.pld_gamma * round_idx) + theta_bar
        return (np.arange(1, n_blocks + 1) / n_blocks) * (1.0 - theta)
