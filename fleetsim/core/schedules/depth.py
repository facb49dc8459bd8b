"""``depth`` — stochastic depth (Huang et al. 2016) / DropPEFT's reconstruction (§1.2).

Block l = 1..L is dropped with p_l = min(cap, s·l), s chosen so that mean_l p_l = d (s = 2d/(L+1) when the
cap does not bind): deeper blocks are dropped more.
"""

from __future__ import annotations

import numpy as np

from fleetsim.core.schedules.base import BernoulliSchedule, DropoutConfig, register_schedule


@register_schedule
class Depth(BernoulliSchedule):
    name = "depth"

    def check(self, cfg: DropoutConfig, n_blocks: int) -> None:
        if cfg.ratio >= cfg.cap:
            raise ValueError(f"a ratio below the depth schedule's cap ({cfg.cap})")

    def drop_probs(self, cfg: DropoutConfig, n_blocks: int, round_idx: int) -> np.ndarray:
        depth = np.arange(1, n_blocks + 1, dtype=float)
        if cfg.ratio == 0.0:
            return np.zeros(n_blocks)
        self.check(cfg, n_blocks)
        lo, hi = 0.0, cfg.cap  # find s with mean(min(cap, s·l)) = d by bisection
        for _ in range(100):
            mid = (lo + hi) / 2
            if np.minimum(cfg.cap, mid * depth).mean() < cfg.ratio:
                lo = mid
            else:
                hi = mid
        return np.minimum(cfg.cap, hi * depth)
