"""What the simulation carries across rounds, as explicit data (so a run can stop and resume at a round
boundary)."""

from __future__ import annotations

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
