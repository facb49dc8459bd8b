"""Reward functions of the configurator, registered by name: progress per simulated second.

Each takes the finished round (and the previous evaluation) and returns a reward per device that was
selected, or nothing when the round carries no signal (e.g. no evaluation that round). A lost update made
no progress: reward 0, so arms that make devices miss the deadline score low.

* ``loss_drop_per_s`` — the device's full-depth loss on a fixed probe of its own examples, before minus
  after its update, divided by the device's simulated time for the update (DropPEFT reconstruction §1.2).
* ``loss_drop_per_round_s`` — the same loss drop divided by the round's duration (the slowest device's).
* ``global_loss_drop_per_s`` — drop of the global evaluation loss since the previous evaluation, divided
  by the round's duration, credited to every device of the round.
* ``accuracy_gain_per_s`` — the same with the global accuracy.
"""

from __future__ import annotations

from collections.abc import Callable

from fleetsim.core.evaluation import EvalResult
from fleetsim.core.feedback import RoundFeedback
from fleetsim.core.updates import Outcome

__all__ = ["REWARDS", "RewardFn"]

RewardFn = Callable[[RoundFeedback, EvalResult | None], dict[int, float] | None]


def _local_drop(feedback: RoundFeedback, per_round: bool) -> dict[int, float]:
    results = {r.plan.device_id: r for r in feedback.results}
    round_s = max(feedback.end_s - feedback.start_s, 1e-9)
    out: dict[int, float] = {}
    for rec in feedback.records:
        res = results.get(rec.device_id)
        if rec.outcome is not Outcome.DELIVERED or res is None:
            out[rec.device_id] = 0.0
            continue
        if res.probe_loss_before is None or res.probe_loss_after is None:
            raise ValueError("loss_drop rewards need probe losses (configurator.probe_examples() > 0)")
        seconds = round_s if per_round else max(rec.end_s - rec.start_s, 1e-9)
        out[rec.device_id] = (res.probe_loss_before - res.probe_loss_after) / seconds
    return out


def _global(feedback: RoundFeedback, previous: EvalResult | None, metric: str) -> dict[int, float] | None:
    if feedback.evaluation is None or previous is None:
        return None
    now, before = getattr(feedback.evaluation, metric), getattr(previous, metric)
    gain = (before - now) if metric == "loss" else (now - before)
    value = gain / max(feedback.end_s - feedback.start_s, 1e-9)
    return {rec.device_id: value for rec in feedback.records}


REWARDS: dict[str, RewardFn] = {
    "loss_drop_per_s": lambda fb, prev: _local_drop(fb, per_round=False),
    "loss_drop_per_round_s": lambda fb, prev: _local_drop(fb, per_round=True),
    "global_loss_drop_per_s": lambda fb, prev: _global(fb, prev, "loss"),
    "accuracy_gain_per_s": lambda fb, prev: _global(fb, prev, "accuracy"),
}
