"""Value types of one client update: what it is told to do, under which conditions, what it costs, what
became of it.

These are plain frozen records shared by the configurator, the cost model, the simulation, the executor
and the recorder. A failed update is a value with a reason, never an exception.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

import numpy as np

from fleetsim.core.schedules import DropoutConfig

if TYPE_CHECKING:
    import torch

__all__ = [
    "Conditions",
    "Outcome",
    "TrainConfig",
    "UpdateCost",
    "UpdatePlan",
    "UpdateRecord",
    "UpdateResult",
]


@dataclass(frozen=True)
class TrainConfig:
    """A device's training configuration for one round (the configurator's output)."""

    local_steps: int
    batch_size: int
    seq_len: int
    lr: float
    optimizer: str = "adamw"
    weight_decay: float = 0.0
    dropout: DropoutConfig = field(default_factory=DropoutConfig)
    trainable_depth: int | None = None  # train only the LoRA of the top blocks (FedAdapter); None: all
    arm: int | None = None  # the configurator's arm this config came from (its reward goes to that arm)
    probe_examples: int = 0  # shard examples scored at full depth before and after the update (rewards)
    shared: frozenset[str] | None = None  # trainable tensors exchanged with the server (None: all of them)

    def rows_per_step(self, n_samples: int) -> int:
        """Examples in each step's mini-batch on a shard of ``n_samples``: a small shard is one short batch."""
        return min(self.batch_size, n_samples)


@dataclass(frozen=True)
class UpdatePlan:
    """One client update, fully determined before anything runs."""

    round_idx: int
    device_id: int
    config: TrainConfig
    seed: int  # torch seed of the local training (batch order, dropout)
    shard: np.ndarray = field(repr=False)  # indices of the device's training examples
    mask: np.ndarray = field(repr=False)  # (local_steps, n_blocks) bool: blocks that run in each step
    probe: np.ndarray | None = field(default=None, repr=False)  # shard examples scored before/after (rewards)
    blocks_per_step: tuple[int, ...] = field(default=(), repr=False)  # blocks run in each step (default: mask's)

    def __post_init__(self) -> None:
        if not self.blocks_per_step:
            object.__setattr__(self, "blocks_per_step", tuple(self.mask.sum(axis=1).tolist()))

    @property
    def n_samples(self) -> int:
        return len(self.shard)

    @property
    def block_steps(self) -> np.ndarray:
        """Per block, the number of local steps in which it ran (and its LoRA was trained)."""
        return self.mask.sum(axis=0)

    @property
    def dropped_fraction(self) -> float:
        """The dropout ratio executed: the fraction of (step, block) pairs skipped."""
        return 1.0 - sum(self.blocks_per_step) / self.mask.size

    @property
    def active_blocks_mean(self) -> float:
        """Blocks run per local step, averaged over the update's steps."""
        return sum(self.blocks_per_step) / self.mask.shape[0]


@dataclass(frozen=True)
class Conditions:
    """Random conditions of one update on one device, drawn before it starts."""

    downlink_mbps: float
    uplink_mbps: float
    straggler_factor: float  # multiplies compute time; lognormal with median 1
    failure_fraction: float | None  # the update fails after this fraction of its planned time, or never


@dataclass(frozen=True)
class UpdateCost:
    """What an update costs, independent of the device that runs it."""

    flops: int  # all local steps, forward + backward, counted on the real model (or the cost-model proxy)
    peak_memory_bytes: int  # frozen weights + trainable params/grads/optimizer state + activations
    download_bytes: int  # tensors the server sends
    upload_bytes: int  # tensors the device sends back
    memory_bytes: int = 0  # all local steps: bytes read + written by tensor operations (shape-aware model)
    kernel_calls: int = 0  # all local steps: tensor operations dispatched (shape-aware model)


class Outcome(StrEnum):
    """How an update ended. Everything but ``delivered`` is a loss, with this reason."""

    DELIVERED = "delivered"
    OFFLINE = "offline"  # the device left its online period mid-update
    FAILURE = "failure"  # a random per-update failure (crash, network error)
    DEADLINE = "deadline"  # still running when the round deadline passed
    OOM = "oom"  # peak memory above the device's usable memory
    OVERCOMMITTED = "overcommitted"  # over-commitment: the round already had its first K updates
    STALE = "stale"  # asynchronous rounds: arrived more than max_staleness aggregations late

    @classmethod
    def losses(cls) -> list[Outcome]:
        """Every outcome but ``delivered``, in declaration order."""
        return [o for o in cls if o is not cls.DELIVERED]


@dataclass(frozen=True)
class UpdateRecord:
    """The simulated life of one update (one row of ``updates.parquet`` before training results)."""

    round_idx: int
    device_id: int
    profile: str
    tier: str
    outcome: Outcome
    failed_phase: str | None  # download / compute / upload, for losses
    start_s: float
    end_s: float  # when it arrived or was lost
    download_s: float  # planned phase durations
    compute_s: float
    upload_s: float
    downlink_mbps: float
    uplink_mbps: float
    straggler_factor: float
    flops: int
    peak_memory_bytes: int
    usable_memory_bytes: int
    active_blocks_mean: float  # blocks run per local step, averaged over the update's steps
    bytes_down: int  # actually transferred (partial when a transfer was cut)
    bytes_up: int
    energy_j: float
    offline_cause: str | None = None  # offline losses: availability, outage or battery


@dataclass
class UpdateResult:
    """A delivered update after real training."""

    plan: UpdatePlan
    state: dict[str, torch.Tensor]
    train_loss_first: float
    train_loss_last: float
    train_loss_mean: float
    probe_loss_before: float | None = None  # full-depth loss on the plan's probe examples, before training
    probe_loss_after: float | None = None  # ... and after
