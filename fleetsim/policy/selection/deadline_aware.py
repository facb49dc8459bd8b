"""``deadline_aware``: uniform among the candidates expected to finish in time.

A candidate is kept when the expected time of its fastest feasible configuration (the simulation's time
model under median conditions) is at most the limit: ``max_update_s`` if given, else the round deadline.
Devices that cannot fit any configuration in memory have an infinite expected time and are never kept.
Expectations ignore straggler slow-downs and link draws, so a kept device can still miss the deadline.
"""

from __future__ import annotations

from pydantic import Field, PositiveFloat

from fleetsim.policy.selection.base import SELECTORS, SelectionInput, Selector, uniform_sample
from fleetsim.spec.schema import Strict
from fleetsim.world.fleet import Device

__all__ = ["DeadlineAware"]


class DeadlineAwareOptions(Strict):
    max_update_s: PositiveFloat | None = Field(
        None, description="the longest expected update a device may take (null: the round deadline)"
    )


@SELECTORS.register
class DeadlineAware(Selector):
    """Uniform among devices whose fastest feasible update is expected within the limit."""

    name = "deadline_aware"
    Options = DeadlineAwareOptions

    def limit_s(self, problem: SelectionInput) -> float:
        assert isinstance(self.options, DeadlineAwareOptions)
        own = self.options.max_update_s
        return problem.deadline_s if own is None else min(own, problem.deadline_s)

    def select(self, problem: SelectionInput) -> list[Device]:
        limit = self.limit_s(problem)
        fits = [d for d in problem.candidates if problem.expected_s(d) <= limit]
        return uniform_sample(fits, problem.k, problem.rng)
