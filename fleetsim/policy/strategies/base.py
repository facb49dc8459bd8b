"""The strategy ABC: the round contract between the simulation and a federated method.

Modelled on Flower's ``Strategy``: a small ABC, the round number first, delivered results passed in and
lost updates known from the records. For round r the simulation calls, in this order:

1. ``select(r, available, k)`` — the devices that train (the scenario's registered selector decides);
2. ``configure(r, devices)`` — an :class:`~fleetsim.core.rounds.Assignment`: one ``TrainConfig`` each, which
   also names the trainable tensors that update exchanges with the server (their bytes are costed);
3. ``start_state(device, global_state)`` — what each delivered update trains from;
4. ``aggregate(r, global_state, results)`` — an :class:`~fleetsim.core.rounds.Aggregate`: the new global state;
5. ``eval_state(global_state)`` / ``device_state(device, global_state)`` — the models evaluated;
6. ``observe(feedback)`` — learn from the round; extra columns and tables.

Hooks take what they need as arguments and return values; none stores a field for a later hook to read.
What a strategy carries across rounds (and its configurator's and bandit's state) is in ``state_dict`` /
``load_state_dict``. :class:`~fleetsim.policy.strategies.fedlora.FedLoRA` implements every hook (plain
federated LoRA) and the other strategies override what they change.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from fleetsim.core.evaluation import EvalResult
from fleetsim.core.registry import Registry
from fleetsim.core.rng import Streams
from fleetsim.core.rounds import Aggregate, Assignment, RoundExtras, RoundFeedback
from fleetsim.core.schedules import DropoutConfig
from fleetsim.core.state import StateDict
from fleetsim.core.updates import TrainConfig, UpdateResult
from fleetsim.costs.cost_model import CostModel
from fleetsim.policy.configurators.base import Configurator
from fleetsim.policy.selection import make_selector
from fleetsim.spec.schema import Strict
from fleetsim.world.fleet import Device

if TYPE_CHECKING:
    import numpy as np
    import torch

__all__ = ["STRATEGIES", "NoOptions", "Strategy", "StrategyContext"]

Tensors = dict[str, "torch.Tensor"]


class NoOptions(Strict):
    """A strategy without options."""


@dataclass(frozen=True)
class StrategyContext:
    """What a strategy may use to decide: the scenario's base config, costs, random streams, the model's blocks."""

    base_config: TrainConfig
    cost_model: CostModel
    streams: Streams
    block_of: dict[str, int | None]  # trainable tensor name → block index (None: head)
    n_blocks: int
    evaluate: Callable[[Tensors], EvalResult] | None = None  # for strategies that run trials
    shard_sizes: Sequence[int] = ()  # device id → training examples (a small shard trains at a smaller batch)
    selection: str = "uniform"  # the registered selector that picks each round's devices
    selection_options: Mapping[str, Any] = field(default_factory=dict)
    deadline_s: float = math.inf  # the round deadline (deadline-aware selection)


class Strategy(ABC):
    """A federated method; see the module docstring for the order of the hooks."""

    name: ClassVar[str]
    Options: ClassVar[type[Strict]] = NoOptions

    def __init__(self, ctx: StrategyContext, options: Strict):
        self.ctx = ctx
        self.options = options
        self.configurator = self.make_configurator(ctx, options)
        self.selector = make_selector(ctx.selection, dict(ctx.selection_options))

    @classmethod
    @abstractmethod
    def make_configurator(cls, ctx: StrategyContext, options: Strict) -> Configurator:
        """The configurator of a strategy built with ``ctx`` and ``options`` (from its arguments alone)."""

    @classmethod
    def resolved_options(cls, options: Strict) -> Strict:
        """The options this strategy runs with (every default filled in, anything it pins applied)."""
        return options

    @classmethod
    def dropout_options(cls, options: Strict) -> dict[str, DropoutConfig]:
        """The dropout configurations ``options`` can assign, by the option that sets each (checked against
        the model's number of blocks when the scenario loads)."""
        return {}

    @abstractmethod
    def select(
        self, round_idx: int, available: Sequence[Device], k: int, rng: np.random.Generator | None = None
    ) -> list[Device]:
        """At most ``k`` of the ``available`` devices, in id order, drawn with ``rng``: the asynchronous
        server's selection stream (it selects many times per global version), or by default the round's
        selection stream, keyed by the round."""

    @abstractmethod
    def configure(self, round_idx: int, devices: Sequence[Device]) -> Assignment:
        """A training configuration for every device in ``devices`` (with the tensors it exchanges)."""

    @abstractmethod
    def start_state(self, device_id: int, global_state: Tensors) -> Tensors:
        """The state a device starts its update from."""

    @abstractmethod
    def aggregate(self, round_idx: int, global_state: Tensors, results: Sequence[UpdateResult]) -> Aggregate:
        """Combine the delivered updates into the next global state."""

    @abstractmethod
    def eval_state(self, global_state: Tensors) -> Tensors:
        """The model whose accuracy is reported as the global accuracy."""

    @abstractmethod
    def device_state(self, device_id: int, global_state: Tensors) -> Tensors:
        """The model a device would use for inference now (personalized accuracy)."""

    @abstractmethod
    def observe(self, feedback: RoundFeedback) -> RoundExtras:
        """Learn from a finished round; return what to add to the tables."""

    @abstractmethod
    def state_dict(self) -> StateDict:
        """Everything the strategy carries across rounds (plain tensors, arrays and numbers)."""

    @abstractmethod
    def load_state_dict(self, state: StateDict) -> None:
        """Restore :meth:`state_dict`'s output into a strategy built with the same context and options."""

    def close(self) -> None:
        """Release resources (personal-state stores)."""
        return None


STRATEGIES: Registry[type[Strategy]] = Registry(
    "strategy", "fleetsim.strategies", lambda c: isinstance(c, type) and issubclass(c, Strategy)
)
