"""Layer-dropout schedules: which blocks run in each local step of an update (numpy only).

A schedule turns a device's dropout ratio ``d`` into a per-step choice of active blocks. Every step of an
update is drawn *before* the update is simulated, from the update's own random stream, so its cost is known
in advance and training replays exactly that choice. Each schedule is one registered class in its own file
of this folder and knows its sampler, its expected and its largest number of active blocks, and which
ratios it can reach; adding a schedule is adding a file (and a row in ``tests/core/test_schedules.py``).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Annotated, ClassVar

import numpy as np
from pydantic import AfterValidator

from fleetsim.core.registry import Registry

__all__ = [
    "SCHEDULES",
    "BernoulliSchedule",
    "DropoutConfig",
    "Schedule",
    "ScheduleName",
    "expected_active",
    "max_active",
    "register_schedule",
    "sample_mask",
    "stochastic_round",
]


class Schedule(ABC):
    """How one named schedule chooses the active blocks of a step under a :class:`DropoutConfig`."""

    name: ClassVar[str]

    @abstractmethod
    def step_mask(self, cfg: DropoutConfig, n_blocks: int, round_idx: int, rng: np.random.Generator) -> np.ndarray:
        """Active blocks of one step: bool array (n_blocks,), True = the block runs."""

    @abstractmethod
    def expected_active(self, cfg: DropoutConfig, n_blocks: int, round_idx: int) -> float:
        """Expected number of active blocks per step (what ``step_mask`` averages to)."""

    @abstractmethod
    def max_active(self, cfg: DropoutConfig, n_blocks: int) -> int:
        """Most blocks any step can run (bounds peak activation memory)."""

    def check(self, cfg: DropoutConfig, n_blocks: int) -> None:
        """Raise ``ValueError("<what is expected>")`` when ``cfg`` cannot run on ``n_blocks`` blocks."""
        return None


class BernoulliSchedule(Schedule):
    """Each block dropped independently with its own probability; some step may keep every block."""

    @abstractmethod
    def drop_probs(self, cfg: DropoutConfig, n_blocks: int, round_idx: int) -> np.ndarray:
        """Per-block drop probability, shape (n_blocks,)."""

    def step_mask(self, cfg: DropoutConfig, n_blocks: int, round_idx: int, rng: np.random.Generator) -> np.ndarray:
        return rng.random(n_blocks) >= self.drop_probs(cfg, n_blocks, round_idx)

    def expected_active(self, cfg: DropoutConfig, n_blocks: int, round_idx: int) -> float:
        return float(n_blocks - self.drop_probs(cfg, n_blocks, round_idx).sum())

    def max_active(self, cfg: DropoutConfig, n_blocks: int) -> int:
        return n_blocks


SCHEDULES: Registry[Schedule] = Registry("schedule", "fleetsim.schedules", lambda s: isinstance(s, Schedule))


def register_schedule(cls: type[Schedule]) -> type[Schedule]:
    """Class decorator: register an instance of ``cls`` under its ``name``."""
    SCHEDULES.register(cls())
    return cls


# A schedule name in an options schema: rejected at load time unless registered.
ScheduleName = Annotated[str, AfterValidator(SCHEDULES.check)]


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
            raise ValueError(f"unknown schedule {self.schedule!r}; known: {SCHEDULES.known()}")


def stochastic_round(x: float, rng: np.random.Generator) -> int:
    """⌊x⌋ or ⌈x⌉, with expectation exactly x."""
    low = math.floor(x)
    return low + int(rng.random() < x - low)


def sample_mask(cfg: DropoutConfig, n_blocks: int, steps: int, round_idx: int, rng: np.random.Generator) -> np.ndarray:
    """Active-block mask of every local step: bool array (steps, n_blocks), True = the block runs."""
    if cfg.ratio == 0.0:
        return np.ones((steps, n_blocks), dtype=bool)
    schedule = SCHEDULES[cfg.schedule]
    schedule.check(cfg, n_blocks)
    return np.stack([schedule.step_mask(cfg, n_blocks, round_idx, rng) for _ in range(steps)])


def expected_active(cfg: DropoutConfig, n_blocks: int, round_idx: int = 0) -> float:
    """Expected number of active blocks per step under ``cfg``."""
    if cfg.ratio == 0.0:
        return float(n_blocks)
    return SCHEDULES[cfg.schedule].expected_active(cfg, n_blocks, round_idx)


def max_active(cfg: DropoutConfig, n_blocks: int) -> int:
    """Most blocks any step can run under ``cfg``."""
    if cfg.ratio == 0.0:
        return n_blocks
    return SCHEDULES[cfg.schedule].max_active(cfg, n_blocks)
