"""Stochastic transformer layer dropout (STLD): which blocks run in each local step, and running only them.

A schedule turns a device's dropout ratio ``d`` into a per-step choice of active blocks. All steps of an
update are drawn *before* the update is simulated (from the update's own random stream), so its cost is
known in advance and training replays exactly that choice. Skipping is real: the model's block
``ModuleList`` is swapped for the active subset around the forward pass, so a skipped block runs no
forward, saves no activations, takes no backward and its LoRA gets no gradient. Evaluation always runs
every block.

Schedules (L blocks, l = 1..L; ``d`` is the expected fraction of blocks dropped per step):

* ``uniform`` — LayerDrop (Fan et al. 2019): each block dropped independently with probability d.
* ``depth`` — stochastic depth (Huang et al. 2016) / DropPEFT's reconstruction (§1.2): p_l = min(cap, s·l),
  s chosen so that mean_l p_l = d (s = 2d/(L+1) when the cap does not bind).
* ``exact_k`` — exactly k = (1−d)·L blocks per step, uniformly without replacement; a fractional k is
  rounded stochastically (⌊k⌋ or ⌈k⌉, expectation exact), so peak memory is bounded by ⌈k⌉ blocks.
* ``keep_ends`` — the first and last ``ends`` blocks always run; d·L blocks (stochastically rounded, at most
  the middle) are dropped uniformly from the middle (research/stld_experiments.md, keep-ends follow-up).
* ``pld`` — Progressive Layer Dropping (Zhang & He 2020): θ(t) = (1−θ̄)·e^(−γt) + θ̄ over rounds t, block l
  kept with probability 1 − (l/L)(1−θ(t)); θ̄ = 1 − 2Ld/(L+1), so the drop ratio tends to d.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = [
    "SCHEDULES",
    "DropoutConfig",
    "expected_active",
    "max_active",
    "sample_mask",
]


@dataclass(frozen=True)
class DropoutConfig:
    """Layer dropout of one device's update. ``ratio`` 0 means full depth (fedlora)."""

    ratio: float = 0.0
    schedule: str = "uniform"
    ends: int = 1  # keep_ends: blocks always kept at each end
    cap: float = 0.9  # depth: largest per-block drop probability
    pld_gamma: float = 0.1  # pld: decay of θ per round

    def __post_init__(self) -> None:
        if not 0.0 <= self.ratio < 1.0:
            raise ValueError(f"dropout ratio must be in [0, 1), got {self.ratio}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"unknown schedule {self.schedule!r}; known: {sorted(SCHEDULES)}")


def _stochastic_round(x: float, rng: np.random.Generator) -> int:
    low = math.floor(x)
    return low + int(rng.random() < x - low)


def _depth_probs(cfg: DropoutConfig, n_blocks: int) -> np.ndarray:
    depth = np.arange(1, n_blocks + 1, dtype=float)
    if cfg.ratio == 0.0:
        return np.zeros(n_blocks)
    if cfg.ratio >= cfg.cap:
        raise ValueError(f"depth schedule: ratio {cfg.ratio} must stay below cap {cfg.cap}")
    lo, hi = 0.0, cfg.cap  # find s with mean(min(cap, s·l)) = d by bisection
    for _ in range(100):
        mid = (lo + hi) / 2
        if np.minimum(cfg.cap, mid * depth).mean() < cfg.ratio:
            lo = mid
        else:
            hi = mid
    return np.minimum(cfg.cap, hi * depth)


def _pld_probs(cfg: DropoutConfig, n_blocks: int, round_idx: int) -> np.ndarray:
    theta_bar = 1.0 - 2.0 * n_blocks * cfg.ratio / (n_blocks + 1)
    if theta_bar < 0.0:
        raise ValueError(f"pld: ratio {cfg.ratio} is above the largest reachable (L+1)/(2L)")
    theta = (1.0 - theta_bar) * math.exp(-cfg.pld_gamma * round_idx) + theta_bar
    return (np.arange(1, n_blocks + 1) / n_blocks) * (1.0 - theta)


def _bernoulli(probs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return rng.random(len(probs)) >= probs


def _exact_k(cfg: DropoutConfig, n_blocks: int, rng: np.random.Generator) -> np.ndarray:
    k = _stochastic_round((1.0 - cfg.ratio) * n_blocks, rng)
    mask = np.zeros(n_blocks, dtype=bool)
    mask[rng.choice(n_blocks, size=k, replace=False)] = True
    return mask


def _keep_ends(cfg: DropoutConfig, n_blocks: int, rng: np.random.Generator) -> np.ndarray:
    ends = min(cfg.ends, n_blocks // 2)
    middle = np.arange(ends, n_blocks - ends)
    drop = min(_stochastic_round(cfg.ratio * n_blocks, rng), len(middle))
    mask = np.ones(n_blocks, dtype=bool)
    mask[rng.choice(middle, size=drop, replace=False)] = False
    return mask


Sampler = Callable[[DropoutConfig, int, int, np.random.Generator], np.ndarray]

SCHEDULES: dict[str, Sampler] = {
    "uniform": lambda c, n, r, g: _bernoulli(np.full(n, c.ratio), g),
    "depth": lambda c, n, r, g: _bernoulli(_depth_probs(c, n), g),
    "exact_k": lambda c, n, r, g: _exact_k(c, n, g),
    "keep_ends": lambda c, n, r, g: _keep_ends(c, n, g),
    "pld": lambda c, n, r, g: _bernoulli(_pld_probs(c, n, r), g),
}


def sample_mask(cfg: DropoutConfig, n_blocks: int, steps: int, round_idx: int, rng: np.random.Generator) -> np.ndarray:
    """Active-block mask of every local step: bool array (steps, n_blocks), True = the block runs."""
    if cfg.ratio == 0.0:
        return np.ones((steps, n_blocks), dtype=bool)
    sampler = SCHEDULES[cfg.schedule]
    return np.stack([sampler(cfg, n_blocks, round_idx, rng) for _ in range(steps)])


def expected_active(cfg: DropoutConfig, n_blocks: int, round_idx: int = 0) -> float:
    """Expected number of active blocks per step under ``cfg`` (what ``sample_mask`` averages to)."""
    d = cfg.ratio
    if d == 0.0:
        return float(n_blocks)
    if cfg.schedule == "depth":
        return float(n_blocks - _depth_probs(cfg, n_blocks).sum())
    if cfg.schedule == "pld":
        return float(n_blocks - _pld_probs(cfg, n_blocks, round_idx).sum())
    if cfg.schedule == "keep_ends":
        ends = min(cfg.ends, n_blocks // 2)
        return float(n_blocks - min(d * n_blocks, n_blocks - 2 * ends))
    return float((1.0 - d) * n_blocks)  # uniform, exact_k


def max_active(cfg: DropoutConfig, n_blocks: int) -> int:
    """Most blocks any step can run under ``cfg`` (bounds peak activation memory)."""
    if cfg.ratio == 0.0 or cfg.schedule in ("uniform", "depth", "pld"):
        return n_blocks  # Bernoulli schedules may keep every block in some step
    if cfg.schedule == "exact_k":
        return math.ceil((1.0 - cfg.ratio) * n_blocks - 1e-9)
    ends = min(cfg.ends, n_blocks // 2)
    return n_blocks - min(math.floor(cfg.ratio * n_blocks + 1e-9), n_blocks - 2 * ends)
