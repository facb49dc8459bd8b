"""``summary.json``: a run's headline numbers (simulated time to target, accuracies, totals), its host
times and the versions that produced it."""

from __future__ import annotations

import platform
from importlib import metadata
from typing import Any

import pandas as pd
import torch

from fleetsim.app.loading import LoadedScenario
from fleetsim.core.rounds import round_number
from fleetsim.core.updates import Outcome, TrainConfig
from fleetsim.core.version import VERSION as __version__
from fleetsim.costs.cost_model import CostModel
from fleetsim.sim.state import SimulationState
from fleetsim.train.hardware import resolve_device

__all__ = ["configurator_summary", "run_summary"]


def _versions() -> dict[str, str]:
    out = {"fleetsim": __version__, "python": platform.python_version()}
    for pkg in ("torch", "transformers", "peft", "simpy", "numpy", "pandas"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "missing"
    return out


def run_summary(
    loaded: LoadedScenario,
    state: SimulationState,
    frames: dict[str, pd.DataFrame],
    cost_model: CostModel,
    base: TrainConfig,
    *,
    majority_accuracy: float,
    initial_accuracy: float,
    initial_perplexity: float | None = None,
    eval_examples: int,
    setup_s: float,
) -> dict[str, Any]:
    """The summary of a finished simulation (``host_time_s.total`` and ``label`` are added by the runner). A
    causal-LM run adds its perplexities; its accuracies are next-token accuracies and it has no majority class."""
    rounds, updates = frames["rounds"], frames["updates"]
    sc = loaded.scenario
    lost: dict[str, int] = {}
    delivered = 0
    if len(updates):
        is_delivered = updates.outcome == Outcome.DELIVERED
        lost = {str(k): int(v) for k, v in updates[~is_delivered].outcome.value_counts().items()}
        delivered = int(is_delivered.sum())
    step = cost_model.step(base.batch_size, base.seq_len)
    configurator = configurator_summary(rounds, updates)
    return {
        "scenario": sc.name,
        "scenario_file": str(loaded.path),
        "seed": sc.seed,
        "strategy": sc.strategy.name,
        "mode": "systems (training.mode: none — nothing trained, no accuracy)"
        if not sc.training.trains
        else "training",
        "rounds_mode": sc.rounds.mode,
        "selection": sc.selection.name,
        **({"server_mbps": sc.server.model_dump()} if sc.server.capped else {}),
        "task": sc.task,
        "model": sc.model.id,
        "dataset": sc.dataset.name,
        "fleet_size": sc.fleet_size,
        "rounds": len(rounds),
        "stop_reason": state.stop_reason,
        "sim_time_s": float(rounds.end_s.iloc[-1]) if len(rounds) else 0.0,
        "target_accuracy": sc.stop.target_accuracy,
        "time_to_target_s": state.time_to_target_s,
        "round_to_target": None if state.round_idx_to_target is None else round_number(state.round_idx_to_target),
        "initial_accuracy": initial_accuracy,
        "final_accuracy": state.last_eval.accuracy if state.last_eval else None,
        "personalized_accuracy": state.last_personalized,
        "final_eval_loss": state.last_eval.loss if state.last_eval else None,
        "best_accuracy": max((a for _, a in state.history), default=None),
        "majority_class_accuracy": None if sc.language_model else majority_accuracy,
        **(_perplexities(sc.stop.target_perplexity, initial_perplexity, state, rounds) if sc.language_model else {}),
        "eval_examples": eval_examples,
        "updates_selected": len(updates),
        "updates_delivered": delivered,
        "updates_lost": lost,
        **({"configurator": configurator} if configurator is not None else {}),
        "device_energy_j": float(updates.energy_j.sum()) if len(updates) else 0.0,
        "bytes_down": int(updates.bytes_down.sum()) if len(updates) else 0,
        "bytes_up": int(updates.bytes_up.sum()) if len(updates) else 0,
        "cost_model": {
            **cost_model.describe(),
            "flops_per_step_full_depth": step.flops,
            "activation_bytes_per_step_full_depth": step.activation_bytes,
            "trainable_bytes": cost_model.counter.trainable_bytes,
            "frozen_bytes": cost_model.counter.frozen_bytes,
        },
        "host_time_s": {
            "setup": setup_s,
            "training": state.host_train_s,
            "evaluation": state.host_eval_s,
            "per_delivered_update": state.host_train_s / delivered if delivered else None,
        },
        "host": {
            "cpus": torch.get_num_threads(),
            "machine": platform.machine(),
            "executor": sc.executor.kind,
            "workers": 1 if sc.executor.kind == "inline" else sc.executor.workers,
            "device": resolve_device(sc.training.device).type,
            "precision": sc.training.precision,
        },
        "versions": _versions(),
    }


def _perplexities(
    target: float | None, initial: float | None, state: SimulationState, rounds: pd.DataFrame
) -> dict[str, Any]:
    """A language model's test perplexities: the target, before training, at the end, and the lowest."""
    evaluated = rounds.perplexity.dropna() if "perplexity" in rounds else pd.Series(dtype=float)
    return {
        "target_perplexity": target,
        "initial_perplexity": initial,
        "final_perplexity": state.last_eval.perplexity if state.last_eval else None,
        "best_perplexity": float(evaluated.min()) if len(evaluated) else None,
    }


def configurator_summary(rounds: pd.DataFrame, updates: pd.DataFrame) -> dict[str, Any] | None:
    """What an online configurator chose: the mean configured dropout ratio per tier and the mean round
    time, over the first and the last quarter of the rounds (at least one round each; a tier's ratio is None
    where it took no part); None without a configurator."""
    if "arm" not in updates.columns or updates.arm.isna().all() or not len(rounds):
        return None
    n = max(1, len(rounds) // 4)
    first, last = set(rounds["round"].iloc[:n]), set(rounds["round"].iloc[-n:])
    by_tier: dict[str, dict[str, float | None]] = {}  # None: the tier took no part in those rounds
    for tier, rows in updates.groupby("tier"):
        early, late = rows[rows["round"].isin(first)], rows[rows["round"].isin(last)]
        by_tier[str(tier)] = {
            "first": float(early.configured_dropout_ratio.mean()) if len(early) else None,
            "last": float(late.configured_dropout_ratio.mean()) if len(late) else None,
        }
    durations = rounds.end_s - rounds.start_s
    return {
        "rounds_each": n,
        "dropout_ratio_by_tier": by_tier,
        "round_time_s": {"first": float(durations.iloc[:n].mean()), "last": float(durations.iloc[-n:].mean())},
    }
