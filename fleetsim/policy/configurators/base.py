"""Configurators: assign each selected device its :class:`~fleetsim.core.updates.TrainConfig` for a round.

A configurator sees the devices selected for a round (and which tensors travel) and returns one config per
device; after the round it observes what happened (simulated times, outcomes, training losses, evaluation)
so an online policy can learn. Whatever it learns across rounds is in ``state_dict``. The fixed
configurator gives every device the same configuration.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import replace

from fleetsim.core.rounds import Assignment, RoundExtras, RoundFeedback
from fleetsim.core.schedules import DropoutConfig, expected_active, max_active
from fleetsim.core.state import StateDict
from fleetsim.core.updates import TrainConfig
from fleetsim.costs.cost_model import CostModel
from fleetsim.costs.timing import phase_times
from fleetsim.world.conditions import median_conditions
from fleetsim.world.fleet import Device

__all__ = [
    "Configurator",
    "FixedConfigurator",
    "device_rows",
    "expected_update_s",
    "peak_memory_bytes",
    "with_dropout",
]


def device_rows(base: TrainConfig, shard_sizes: Sequence[int], device: Device) -> int:
    """The device's mini-batch size (its shard may be smaller than the configured batch)."""
    if device.id < len(shard_sizes):
        return base.rows_per_step(shard_sizes[device.id])
    return base.batch_size


def peak_memory_bytes(cost_model: CostModel, config: TrainConfig, rows: int) -> int:
    """Peak memory of an update under ``config`` at ``rows`` examples per step: the step with the most
    blocks the config's dropout can run."""
    step = cost_model.step(rows, config.seq_len, max_active(config.dropout, cost_model.model_blocks))
    return cost_model.peak_memory_bytes(config.optimizer, step.activation_bytes)


def expected_update_s(
    cost_model: CostModel, config: TrainConfig, rows: int, device: Device, shared: frozenset[str] | None
) -> float:
    """Expected time of an update under ``config`` on ``device``: the simulation's time model under median
    conditions, with the FLOPs of the dropout schedule's expected number of active blocks."""
    blocks = expected_active(config.dropout, cost_model.model_blocks)
    step = cost_model.mean_step(rows, config.seq_len, blocks)
    sent = cost_model.sent_bytes(shared)
    profile = device.profile
    times = phase_times(
        profile,
        median_conditions(profile),
        flops=config.local_steps * step.flops,
        download_bytes=sent,
        upload_bytes=sent,
        memory_bytes=config.local_steps * step.memory_bytes,
        kernel_calls=config.local_steps * step.kernel_calls,
    )
    return times.total_s


def with_dropout(base: TrainConfig, dropout: DropoutConfig, lr_scale: float = 1.0) -> TrainConfig:
    """``base`` with ``dropout``; the learning rate is multiplied by ``lr_scale`` when the ratio is above 0
    (a thinned network tolerates a larger step: README, "Layer dropout and accuracy")."""
    return replace(base, dropout=dropout, lr=base.lr * (lr_scale if dropout.ratio > 0 else 1.0))


class Configurator(ABC):
    """Maps (round, selected devices, shared tensors) to per-device training configs."""

    @abstractmethod
    def assign(self, round_idx: int, devices: Sequence[Device], shared: frozenset[str] | None) -> Assignment:
        """One config per device id in ``devices``; ``shared`` names the tensors that travel (None: all)."""

    def can_train(self, device: Device) -> bool:
        """Whether some configuration this configurator may assign fits ``device`` (default: yes)."""
        return True

    def fastest_s(self, device: Device, shared: frozenset[str] | None) -> float:
        """Expected time of the fastest update this configurator may assign ``device`` that fits its memory
        (``inf``: none fits; default: 0, no expectation)."""
        return 0.0

    def observe(self, feedback: RoundFeedback) -> RoundExtras:
        """Learn from a finished round; return what to record (default: nothing)."""
        return RoundExtras()

    def state_dict(self) -> StateDict:
        """What the configurator carries across rounds (default: nothing)."""
        return {}

    def load_state_dict(self, state: StateDict) -> None:
        """Restore :meth:`state_dict`'s output."""
        return None


class FixedConfigurator(Configurator):
    """Every device gets the same configuration, every round. With a cost model it can also say how long
    that configuration is expected to take on a device (for deadline-aware selection)."""

    def __init__(self, config: TrainConfig, cost_model: CostModel | None = None, shard_sizes: Sequence[int] = ()):
        self.config = config
        self.cost_model = cost_model
        self.shard_sizes = shard_sizes
        self._fastest: dict[tuple[int, int, frozenset[str] | None], float] = {}  # by (profile, rows, shared)

    def fastest_s(self, device: Device, shared: frozenset[str] | None) -> float:
        if self.cost_model is None:
            return 0.0
        rows = device_rows(self.config, self.shard_sizes, device)
        key = (id(device.profile), rows, shared)
        if key not in self._fastest:
            fits = peak_memory_bytes(self.cost_model, self.config, rows) <= device.profile.usable_memory_bytes
            expected = expected_update_s(self.cost_model, self.config, rows, device, shared)
            self._fastest[key] = expected if fits else math.inf
        return self._fastest[key]

    def assign(self, round_idx: int, devices: Sequence[Device], shared: frozenset[str] | None) -> Assignment:
        return Assignment({d.id: self.config for d in devices})
