"""What the simulation carries across rounds, as explicit data (so a run can stop and resume at a round
boundary)."""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from fleetsim.core.evaluation import EvalResult
from fleetsim.core.state import StateDict

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
    round_idx_to_target: int | None = None  # 0-based index (summary.json: round_to_target, its number)
    stop_reason: str | None = None
    host_train_s: float = 0.0
    host_eval_s: float = 0.0
    history: list[tuple[float, float]] = field(default_factory=list)  # (sim time, accuracy)
    round_ends_s: list[float] = field(default_factory=list)  # when each finished round ended

    def state_dict(self) -> StateDict:
        """Everything but the global trainable state (saved on its own), as numbers and arrays."""
        last = self.last_eval
        return {
            "round_idx": self.round_idx,
            "last_eval": {} if last is None else _eval_dict(last),
            "last_personalized": self.last_personalized,
            "time_to_target_s": self.time_to_target_s,
            "round_idx_to_target": self.round_idx_to_target,
            "stop_reason": self.stop_reason,
            "host_train_s": self.host_train_s,
            "host_eval_s": self.host_eval_s,
            "history": np.array(self.history, dtype=float).reshape(-1, 2),
            "round_ends_s": np.array(self.round_ends_s, dtype=float),
        }

    def load_state_dict(self, state: StateDict) -> None:
        last = state["last_eval"]
        self.round_idx = int(state["round_idx"])
        self.last_eval = _eval_result(last) if last else None
        self.last_personalized = state["last_personalized"]
        self.time_to_target_s = state["time_to_target_s"]
        # Checkpoints written before rounds were numbered from 1 hold the same index as "round_to_target".
        self.round_idx_to_target = state.get("round_idx_to_target", state.get("round_to_target"))
        self.stop_reason = state["stop_reason"]
        self.host_train_s = float(state["host_train_s"])
        self.host_eval_s = float(state["host_eval_s"])
        self.history = [(float(t), float(a)) for t, a in state["history"]]
        self.round_ends_s = [float(t) for t in state["round_ends_s"]]

    def round_at(self, time_s: float) -> int:
        """The round in progress at ``time_s``, or the one being waited for: rounds that ended before it."""
        return bisect.bisect_left(self.round_ends_s, time_s)


def _eval_dict(result: EvalResult) -> StateDict:
    out: StateDict = {"accuracy": result.accuracy, "loss": result.loss, "n": result.n_examples}
    if result.perplexity is not None:
        out["perplexity"] = result.perplexity
    return out


def _eval_result(saved: StateDict) -> EvalResult:
    perplexity = saved.get("perplexity")
    return EvalResult(
        float(saved["accuracy"]),
        float(saved["loss"]),
        int(saved["n"]),
        None if perplexity is None else float(perplexity),
    )
