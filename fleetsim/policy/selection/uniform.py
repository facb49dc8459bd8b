"""``uniform``: k candidates uniformly at random without replacement (FedAvg; McMahan et al. 2017)."""

from __future__ import annotations

from fleetsim.policy.selection.base import SELECTORS, SelectionInput, Selector, uniform_sample
from fleetsim.world.fleet import Device

__all__ = ["Uniform"]


@SELECTORS.register
class Uniform(Selector):
    """Every candidate equally likely."""

    name = "uniform"

    def select(self, problem: SelectionInput) -> list[Device]:
        return uniform_sample(problem.candidates, problem.k, problem.rng)
