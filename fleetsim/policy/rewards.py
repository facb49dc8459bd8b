"""Reward functions of the configurator, registered by name: progress per simulated second.

Each takes the finished round (and the previous evaluation) and returns a reward per device that was
selected, or nothing when the round carries no signal (e.g. no evaluation that round). A lost update made
no progress: reward 0, so arms that make devices miss the deadline score low. A reward says whether it
needs a *probe* — a fixed set of the device's examples scored at full depth before and after its update.

* ``loss_drop_per_s`` — the device's probe loss, before minus after its update, divided by the device's
  simulated time for the update (DropPEFT reconstruction §1.2).
* ``loss_drop_per_round_s`` — the same loss drop divided by the round's duration (the slowest device's).
* ``global_loss_drop_per_s`` — drop of the global evaluation loss since the previous evaluation, divided
  by the round's duration, credited to every device of the round.
* ``accuracy_gain_per_s`` — the same with the global accuracy.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Annotated, ClassVar

from pydantic import AfterValidator

from fleetsim.core.evaluation import EvalResult
from fleetsim.core.registry import Registry
from fleetsim.core.rounds import RoundFeedback
from fleetsim.core.updates import Outcome

__all__ = ["REWARDS", "Reward", "RewardName"]


class Reward(ABC):
    """Progress per simulated second, per selected device of a finished round."""

    name: ClassVar[str]
    needs_probe: ClassVar[bool] = False

    @abstractmethod
    def __call__(self, feedback: RoundFeedback, previous: EvalResult | None) -> dict[int, float] | None:
        """Device id → reward for every selected device, or None when the round carries no signal."""


REWARDS: Registry[type[Reward]] = Registry(
    "reward", "fleetsim.rewards", lambda c: isinstance(c, type) and issubclass(c, Reward)
)
RewardName = Annotated[str, AfterValidator(REWARDS.check)]


def _round_s(feedback: RoundFeedback) -> float:
    return max(feedback.end_s - feedback.start_s, 1e-9)


class _ProbeLossDrop(Reward):
    needs_probe = True
    per_round: ClassVar[bool]

    def __call__(self, feedback: RoundFeedback, previous: EvalResult | None) -> dict[int, float] | None:
        results = {r.plan.device_id: r for r in feedback.results}
        out: dict[int, float] = {}
        for rec in feedback.records:
            res = results.get(rec.device_id)
            if rec.outcome is not Outcome.DELIVERED or res is None:
                out[rec.device_id] = 0.0
                continue
            if res.probe_loss_before is None or res.probe_loss_after is None:
                raise ValueError(f"{self.name} needs probe losses (the update's config.probe_examples > 0)")
            seconds = _round_s(feedback) if self.per_round else max(rec.end_s - rec.start_s, 1e-9)
            out[rec.device_id] = (res.probe_loss_before - res.probe_loss_after) / seconds
        return out


@REWARDS.register
class LossDropPerS(_ProbeLossDrop):
    name = "loss_drop_per_s"
    per_round = False


@REWARDS.register
class LossDropPerRoundS(_ProbeLossDrop):
    name = "loss_drop_per_round_s"
    per_round = True


class _GlobalGain(Reward):
    def __call__(self, feedback: RoundFeedback, previous: EvalResult | None) -> dict[int, float] | None:
        if feedback.evaluation is None or previous is None:
            return None
        value = self.gain(feedback.evaluation, previous) / _round_s(feedback)
        return {rec.device_id: value for rec in feedback.records}

    @abstractmethod
    def gain(self, now: EvalResult, before: EvalResult) -> float: ...


@REWARDS.register
class GlobalLossDropPerS(_GlobalGain):
    name = "global_loss_drop_per_s"

    def gain(self, now: EvalResult, before: EvalResult) -> float:
        return before.loss - now.loss


@REWARDS.register
class AccuracyGainPerS(_GlobalGain):
    name = "accuracy_gain_per_s"

    def gain(self, now: EvalResult, before: EvalResult) -> float:
        return now.accuracy - before.accuracy
