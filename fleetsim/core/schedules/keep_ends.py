"""``keep_ends`` — the first and last ``ends`` blocks always run; d·L blocks (stochastically rounded, at most
the middle) are dropped uniformly from the middle (research/stld_experiments.md, keep-ends follow-up)."""

from __future__ import annotations

import math

import numpy as np

from fleetsim.core.schedules.base import DropoutConfig, Schedule, register_schedule, stochastic_round


def _kept_ends(cfg: DropoutConfig, n_blocks: int) -> int:
    return min(cfg.ends, n_blocks // 2)


@register_schedule
class KeepEnds(Schedule):
    name = "keep_ends"

    def check(self, cfg: DropoutConfig, n_blocks: int) -> None:
        ends = _kept_ends(cfg, n_blocks)
        limit = (n_blocks - 2 * ends) / n_blocks
        if cfg.ratio > limit + 0.005:  # 0.67 stands for 2/3 (4 of 6 blocks)
            raise ValueError(
                f"at most {limit:.2f} for keep_ends on {n_blocks} blocks ({n_blocks - 2 * ends} can drop, "
                f"{ends} kept at each end)"
            )

    def step_mask(self, cfg: DropoutConfig, n_blocks: int, round_idx: int, rng: np.random.Generator) -> np.ndarray:
        ends = _kept_ends(cfg, n_blocks)
        middle = np.arange(ends, n_blocks - ends)
        drop = min(stochastic_round(cfg.ratio * n_blocks, rng), len(middle))
        mask = np.ones(n_blocks, dtype=bool)
        mask[rng.choice(middle, size=drop, replace=False)] = False
        return mask

    def expected_active(self, cfg: DropoutConfig, n_blocks: int, round_idx: int) -> float:
        return float(n_blocks - min(cfg.ratio * n_blocks, n_blocks - 2 * _kept_ends(cfg, n_blocks)))

    def max_active(self, cfg: DropoutConfig, n_blocks: int) -> int:
        return n_blocks - min(math.floor(cfg.ratio * n_blocks + 1e-9), n_blocks - 2 * _kept_ends(cfg, n_blocks))
