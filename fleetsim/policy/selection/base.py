"""The selector ABC: picks at most ``k`` of a round's candidates, with the one time model's expectations.

A strategy hands its selector the devices its configurator can train and, for each, the expected time of
the fastest configuration it may assign (:meth:`fleetsim.policy.configurators.base.Configurator.fastest_s`,
the simulation's time model under median conditions; ``inf`` when no configuration fits the device's
memory). Selectors that learn from finished rounds (Oort) keep that in ``state_dict``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import numpy as np

from fleetsim.core.registry import Registry
from fleetsim.core.rounds import RoundFeedback
from fleetsim.core.state import StateDict
from fleetsim.spec.schema import Strict
from fleetsim.world.fleet import Device

__all__ = ["SELECTORS", "SelectionInput", "Selector", "make_selector", "uniform_sample"]

T = TypeVar("T")


def uniform_sample(candidates: Sequence[T], k: int, rng: np.random.Generator) -> list[T]:
    """``k`` candidates drawn uniformly without replacement (all of them if there are at most ``k``),
    in their original order."""
    if len(candidates) <= k:
        return list(candidates)
    if k == 1:  # one draw (choosing without replacement costs more to set up than to draw)
        return [candidates[int(rng.integers(len(candidates)))]]
    picked = np.sort(rng.choice(len(candidates), size=k, replace=False))
    return [candidates[i] for i in picked]


@dataclass(frozen=True)
class SelectionInput:
    """One round's selection problem."""

    round_idx: int
    candidates: Sequence[Device]  # online devices the configurator can train, in id order
    k: int  # how many to select
    expected_s: Callable[[Device], float]  # expected time of the device's fastest feasible update
    deadline_s: float  # the round deadline
    rng: np.random.Generator  # this round's selection stream


class NoOptions(Strict):
    """A selector without options."""


class Selector(ABC):
    """Chooses the devices that train; see the module docstring."""

    name: ClassVar[str]
    Options: ClassVar[type[Strict]] = NoOptions

    def __init__(self, options: Strict):
        self.options = options

    @abstractmethod
    def select(self, problem: SelectionInput) -> list[Device]:
        """At most ``problem.k`` of ``problem.candidates``, in id order."""

    def observe(self, feedback: RoundFeedback) -> None:
        """Learn from a finished round (default: nothing)."""
        return None

    def state_dict(self) -> StateDict:
        """What the selector carries across rounds (default: nothing)."""
        return {}

    def load_state_dict(self, state: StateDict) -> None:
        return None


SELECTORS: Registry[type[Selector]] = Registry(
    "selector", "fleetsim.selectors", lambda c: isinstance(c, type) and issubclass(c, Selector)
)


def make_selector(name: str, options: dict[str, Any] | Strict) -> Selector:
    """The registered selector ``name`` with validated ``options``."""
    cls = SELECTORS[name]
    opts = options if isinstance(options, cls.Options) else cls.Options.model_validate(options)
    return cls(opts)
