"""State that crosses rounds, as plain data: what a strategy, configurator or bandit policy carries.

``state_dict()`` returns a nested mapping whose leaves are numbers, numpy arrays and torch tensors (no
pickled objects), like ``torch.nn.Module.state_dict``; ``load_state_dict`` restores it into an object built
with the same options, after which it behaves exactly as the one saved. This is what a checkpoint holds.
"""

from __future__ import annotations

from typing import Any, Protocol

__all__ = ["StateDict", "Stateful"]

StateDict = dict[str, Any]  # str → number | numpy array | torch tensor | StateDict


class Stateful(Protocol):
    def state_dict(self) -> StateDict: ...

    def load_state_dict(self, state: StateDict) -> None: ...
