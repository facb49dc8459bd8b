"""An example of a strategy of one's own: federated LoRA that trains the fastest devices each round.

Any module can hold a strategy; name it ``module:Class`` in a scenario (the scenario's folder is importable):

    fleetsim run scenarios/tiny.yaml --set strategy.name=plugins.fastest_first:FastestFirst \\
        --set strategy.options.slowest_share=0.25

or register it in your package's ``pyproject.toml`` and use its short name:

    [project.entry-points."fleetsim.strategies"]
    fastest_first = "my_package.fastest_first:FastestFirst"

A strategy subclasses :class:`~fleetsim.policy.strategies.base.Strategy` (here through
:class:`~fleetsim.policy.strategies.fedlora.FedLoRA`, which implements every hook); its ``Options`` (a
pydantic model) are validated like the built-ins' and listed by ``fleetsim strategies``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from pydantic import Field

from fleetsim.policy.strategies.fedlora import FedLoRA
from fleetsim.spec.schema import Strict
from fleetsim.world.fleet import Device


class FastestFirstOptions(Strict):
    slowest_share: float = Field(0.0, ge=0.0, le=1.0, description="share of each round's picks left to chance")


class FastestFirst(FedLoRA):
    """Each round, the devices whose fastest feasible update is expected to finish first (plus a random
    ``slowest_share`` of the picks among the rest, so slow devices' data is not ignored for ever)."""

    name = "fastest_first"
    Options = FastestFirstOptions

    def select(self, round_idx: int, available: Sequence[Device], k: int, draw: int = 0) -> list[Device]:
        assert isinstance(self.options, FastestFirstOptions)
        fits = [d for d in available if self.configurator.can_train(d)]
        speed = {d.id: self.configurator.fastest_s(d, None) for d in fits}
        ranked = sorted((d for d in fits if math.isfinite(speed[d.id])), key=lambda d: (speed[d.id], d.id))
        n_random = round(self.options.slowest_share * k)
        picked = ranked[: k - n_random]
        rest = ranked[k - n_random :]
        if n_random and rest:
            rng = self.ctx.streams.generator("selection", round_idx, draw)
            picked += [rest[i] for i in rng.choice(len(rest), size=min(n_random, len(rest)), replace=False)]
        return sorted(picked, key=lambda d: d.id)
