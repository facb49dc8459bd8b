"""``fedadapter``: train only the top blocks' adapters, deepening by trial rounds (FedAdapter, Cai et al.
MobiCom'23; reconstruction §4).

Adapters here are the LoRA tensors of the top ``depth`` blocks (FedAdapter inserts bottleneck adapters; the
trainable-depth mechanism is the same): the lower blocks' LoRA is frozen, so they run forward only, save no
activations and take no backward, and only the top blocks' LoRA and the head travel. Every ``trial_every``
rounds a trial round splits the selected devices into a *shallow* group (current depth) and a *deep* group
(depth + 1); each group's updates are aggregated separately, both candidates are evaluated, and the better
one (the shallow one on a tie) becomes the global model and sets the depth. Not modelled: FedAdapter's
cross-round cache of lower-block activations (which would also save their forward FLOPs) and its "wide"
group (adapter width; LoRA rank is fixed here). State across rounds: the current depth.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from pydantic import Field

from fleetsim.core.precision import decision_value
from fleetsim.core.rounds import Aggregate, Assignment, round_number
from fleetsim.core.state import StateDict
from fleetsim.core.updates import UpdateResult
from fleetsim.policy.aggregation import block_fedavg
from fleetsim.policy.strategies.base import STRATEGIES, StrategyContext, Tensors
from fleetsim.policy.strategies.fedlora import FedLoRA
from fleetsim.spec.schema import Strict
from fleetsim.world.fleet import Device


class FedAdapterOptions(Strict):
    start_depth: int = Field(1, ge=1, description="blocks (from the top) trained at the start")
    max_depth: int | None = Field(None, ge=1, description="deepest it may grow (null: every block)")
    trial_every: int = Field(4, ge=2, description="every this many rounds, a shallow-vs-deep trial round")


@STRATEGIES.register
class FedAdapter(FedLoRA):
    """FedAdapter (Cai et al. 2023): LoRA trained in the top blocks only, deepening by trial rounds."""

    name = "fedadapter"
    Options = FedAdapterOptions

    def __init__(self, ctx: StrategyContext, options: Strict):
        super().__init__(ctx, options)
        assert isinstance(options, FedAdapterOptions)
        self.opts = options
        self.max_depth = min(options.max_depth or ctx.n_blocks, ctx.n_blocks)
        self.depth = min(options.start_depth, self.max_depth)  # state: blocks trained, from the top

    def is_trial(self, round_idx: int) -> bool:
        return round_number(round_idx) % self.opts.trial_every == 0 and self.depth < self.max_depth

    def configure(self, round_idx: int, devices: Sequence[Device]) -> Assignment:
        """Every device trains the top ``depth`` blocks; in a trial round every other one trains one more.
        Each exchanges exactly the tensors it trains."""
        deeper = 1 if self.is_trial(round_idx) else 0
        depths = {d.id: self.depth + (i % 2) * deeper for i, d in enumerate(devices)}
        base = self.ctx.base_config
        return Assignment({d: replace(base, trainable_depth=k, shared=self.top_names(k)) for d, k in depths.items()})

    def top_names(self, depth: int) -> frozenset[str]:
        """The LoRA tensors of the top ``depth`` blocks, and the head."""
        lowest = self.ctx.n_blocks - depth
        return frozenset(n for n, b in self.ctx.block_of.items() if b is None or b >= lowest)

    def aggregate(self, round_idx: int, global_state: Tensors, results: Sequence[UpdateResult]) -> Aggregate:
        """FedAvg; in a trial round, each depth's group separately, keeping the better candidate."""
        groups: dict[int, list[UpdateResult]] = {}
        for r in results:
            groups.setdefault(r.plan.config.trainable_depth or self.depth, []).append(r)
        if len(groups) < 2 or self.ctx.evaluate is None:
            merged = block_fedavg(global_state, results, self.ctx.block_of) if results else global_state
            return Aggregate(merged, {"trainable_depth": self.depth, "trial": ""})
        candidates = {d: block_fedavg(global_state, rs, self.ctx.block_of) for d, rs in sorted(groups.items())}
        scores = {d: decision_value(self.ctx.evaluate(state).accuracy) for d, state in candidates.items()}
        self.depth = max(sorted(scores), key=lambda d: (scores[d], -d))  # ties: the shallower
        trial = str([round(scores[d], 4) for d in sorted(scores)])
        return Aggregate(candidates[self.depth], {"trainable_depth": self.depth, "trial": trial})

    def state_dict(self) -> StateDict:
        return {**super().state_dict(), "depth": self.depth}

    def load_state_dict(self, state: StateDict) -> None:
        super().load_state_dict(state)
        self.depth = int(state["depth"])
