"""What the simulation carries across rounds, as explicit data (so a run can stop and resume at a round
boundary)."""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from fleetsim.core.evaluation import EvalResult

if TYPE_CHECKING:
    import torch

__all__ = ["SimulationState"]


@dataclass
class SimulationState:
    """The server's state between rounds."""

    global_state: dict[str, torch.Tensor]
    round_idx: int = 0
    last_eval: EvalResult | None = None
    last_personalized: float | None = None
    time_to_target_s: float | None = None
    round_to_target: int | None = None
    stop_reason: str | None = None
    host_train_s: float = 0.0
    host_eval_s: float = 0.0
    history: list[tuple[float, float]] = field(default_factory=list)  # (sim time, accuracy)
    round_ends_s: list[float] = field(default_factory=list)  # when each finished round ended

    def round_at(self, time_s: float) -> int:
        """The round in progress at ``time_s``, or the one being waited for: rounds that ended before it."""
        return bisect.bisect_left(self.round_ends_s, time_s)
