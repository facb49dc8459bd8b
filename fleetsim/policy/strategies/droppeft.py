"""``droppeft``: STLD + the bandit configurator + personalized layer sharing (PTLS), and its ablations.

* ``droppeft`` — per-device dropout ratios from
  :class:`~fleetsim.policy.configurators.droppeft.DropPEFTConfigurator`, the LoRA of the last block
  personal (kept on devices, :mod:`fleetsim.policy.ptls`), per-block FedAvg of the shared tensors only;
  only shared tensors travel. The split is an option (``ptls``); the default was chosen by measurement:
  keeping the deeper half and the head personal cost the global model too much on phones_mixed (README,
  "DropPEFT on phones_mixed").
* ``droppeft_no_configurator`` — the same with one fixed ratio for every device (``fixed_ratio``).
* ``droppeft_no_ptls`` — the configurator, everything shared.

Devices for which no arm fits in memory are not selected (they could only fail with ``oom``).

PTLS is modelled as in FedPer / LG-FedAvg: personal tensors never leave a device, so only shared tensors
are sent and costed, and a device's first update starts its personal tensors from the initial model (the
server never holds anyone's personal tensors). Global accuracy under PTLS is reported for the shared
blocks with the *mean* of the devices' personal tensors — a model the simulator assembles for reporting
only, which no party of the modelled system could build; the mean personalized accuracy (each device's
own model on its local held-out data) is reported next to it.

State across rounds: which blocks are personal (chosen once in ``disagreement`` mode), the accumulated
per-block disagreement, every device's personal tensors and their population mean, and the configurator's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from pydantic import Field

from fleetsim.core.rounds import Aggregate, round_number
from fleetsim.core.schedules import DropoutConfig
from fleetsim.core.state import StateDict
from fleetsim.core.updates import UpdateResult
from fleetsim.policy.aggregation import block_fedavg
from fleetsim.policy.configurators.base import Configurator, FixedConfigurator, with_dropout
from fleetsim.policy.configurators.droppeft import BanditOptions, DropPEFTConfigurator
from fleetsim.policy.ptls import PersonalStore, block_disagreement, personal_names
from fleetsim.policy.strategies.base import STRATEGIES, StrategyContext, Tensors
from fleetsim.policy.strategies.fedlora import FedLoRA
from fleetsim.spec.schema import Strict


class PTLSOptions(Strict):
    mode: Literal["fixed", "disagreement"] = "fixed"
    shared_blocks: int | None = Field(None, ge=0, description="fixed: blocks 0..K-1 shared; null: all but the last")
    personal_blocks: int = Field(1, ge=0, description="disagreement: how many blocks become personal")
    choose_after_rounds: int = Field(2, ge=1, description="disagreement: rounds observed before the split")
    head_personal: bool = False


class DropPEFTOptions(BanditOptions):
    configurator: bool = True
    fixed_ratio: float = Field(0.5, ge=0.0, lt=1.0, description="ratio used when configurator is false")
    ptls: PTLSOptions | None = Field(default_factory=PTLSOptions)


@STRATEGIES.register
class DropPEFT(FedLoRA):
    """DropPEFT: stochastic layer dropout at ratios an online bandit configurator picks per device, and
    personalized layer sharing (PTLS)."""

    name = "droppeft"
    Options = DropPEFTOptions

    # Options an ablation pins whatever the scenario says (see the subclasses below).
    pinned: ClassVar[dict[str, Any]] = {}

    @classmethod
    def _options(cls, options: Strict) -> DropPEFTOptions:
        assert isinstance(options, DropPEFTOptions)
        return options.model_copy(update=cls.pinned)

    @classmethod
    def resolved_options(cls, options: Strict) -> Strict:
        return cls._options(options)

    @classmethod
    def dropout_options(cls, options: Strict) -> dict[str, DropoutConfig]:
        o = cls._options(options)
        if not o.configurator:
            return {"fixed_ratio": DropoutConfig(ratio=o.fixed_ratio, schedule=o.schedule, ends=o.ends)}
        return {f"arms[{i}]": DropoutConfig(ratio=a, schedule=o.schedule, ends=o.ends) for i, a in enumerate(o.arms)}

    @classmethod
    def make_configurator(cls, ctx: StrategyContext, options: Strict) -> Configurator:
        o = cls._options(options)
        if not o.configurator:
            return FixedConfigurator(
                with_dropout(ctx.base_config, cls.dropout_options(o)["fixed_ratio"], o.lr_scale),
                ctx.cost_model,
                ctx.shard_sizes,
            )
        return DropPEFTConfigurator(
            ctx.base_config, ctx.cost_model, o, ctx.streams.generator("policy"), shard_sizes=ctx.shard_sizes
        )

    def __init__(self, ctx: StrategyContext, options: Strict):
        super().__init__(ctx, options)
        self.opts = self._options(options)
        ptls = self.opts.ptls
        self.store: PersonalStore | None = PersonalStore() if ptls is not None else None
        # State: the personal blocks (chosen up front in fixed mode, after some rounds in disagreement mode).
        self.split_chosen = ptls is not None and ptls.mode == "fixed"
        self.personal_blocks = np.arange(0)
        if ptls is not None and ptls.mode == "fixed":
            k = ctx.n_blocks - 1 if ptls.shared_blocks is None else min(ptls.shared_blocks, ctx.n_blocks)
            self.personal_blocks = np.arange(k, ctx.n_blocks)
        self.disagreement = np.zeros(ctx.n_blocks)
        self.mean_personal: Tensors = {}  # population mean of the personal tensors (reporting only)

    # ------------------------------------------------------------------------------------------- PTLS

    @property
    def personal(self) -> frozenset[str]:
        """Names of the tensors that stay on the devices."""
        if self.opts.ptls is None or not self.split_chosen:
            return frozenset()
        blocks = {int(b) for b in self.personal_blocks}
        return personal_names(self.ctx.block_of, blocks, self.opts.ptls.head_personal)

    def shared_names(self, round_idx: int) -> frozenset[str] | None:
        personal = self.personal
        if not personal:
            return None
        return frozenset(n for n in self.ctx.block_of if n not in personal)

    def start_state(self, device_id: int, global_state: Tensors) -> Tensors:
        """Shared tensors from the server; personal ones from the device's own store, or — for a device that
        has not trained yet — the initial model's (the server's copy of a personal tensor is never updated)."""
        personal = self.personal
        if self.store is None or not personal:
            return global_state
        own = self.store.get(device_id) or {}
        return {name: own.get(name, tensor) if name in personal else tensor for name, tensor in global_state.items()}

    def device_state(self, device_id: int, global_state: Tensors) -> Tensors:
        return self.start_state(device_id, global_state)

    def eval_state(self, global_state: Tensors) -> Tensors:
        if not self.mean_personal:
            return global_state
        return {n: self.mean_personal.get(n, t) for n, t in global_state.items()}

    def _refresh_mean_personal(self, global_state: Tensors, personal: frozenset[str]) -> None:
        assert self.store is not None
        devices = self.store.devices()
        if not devices:
            return
        sums = {name: torch.zeros_like(global_state[name]) for name in personal}
        for d in devices:
            own = self.store.get(d) or {}
            for name in personal:
                sums[name] += own.get(name, global_state[name])
        self.mean_personal = {name: total / len(devices) for name, total in sums.items()}

    def _choose_split(self, round_idx: int, global_state: Tensors, results: Sequence[UpdateResult]) -> None:
        """Disagreement mode: accumulate per-block disagreement; after enough rounds, the most disagreeing
        blocks become personal (once)."""
        ptls = self.opts.ptls
        if ptls is None or ptls.mode != "disagreement" or self.split_chosen:
            return
        self.disagreement += block_disagreement(global_state, results, self.ctx.block_of, self.ctx.n_blocks)
        if round_number(round_idx) >= ptls.choose_after_rounds:
            self.personal_blocks = np.sort(np.argsort(-self.disagreement)[: ptls.personal_blocks])
            self.split_chosen = True

    def aggregate(self, round_idx: int, global_state: Tensors, results: Sequence[UpdateResult]) -> Aggregate:
        if not results:
            return Aggregate(global_state, {"personal_tensors": len(self.personal)})
        self._choose_split(round_idx, global_state, results)
        merged = block_fedavg(global_state, results, self.ctx.block_of)
        personal = self.personal
        if self.store is not None and personal:
            for r in results:
                self.store.put(r.plan.device_id, {n: r.state[n] for n in personal})
            merged = {n: (global_state[n] if n in personal else t) for n, t in merged.items()}
            self._refresh_mean_personal(global_state, personal)
        return Aggregate(merged, {"personal_tensors": len(personal)})

    # ------------------------------------------------------------------------------------------- state

    def state_dict(self) -> StateDict:
        return {
            **super().state_dict(),
            "split_chosen": int(self.split_chosen),
            "personal_blocks": self.personal_blocks.copy(),
            "disagreement": self.disagreement.copy(),
            "mean_personal": {n: t.clone() for n, t in self.mean_personal.items()},
            "personal_store": self.store.state_dict() if self.store is not None else {},
        }

    def load_state_dict(self, state: StateDict) -> None:
        super().load_state_dict(state)
        self.split_chosen = bool(state["split_chosen"])
        self.personal_blocks = np.array(state["personal_blocks"], dtype=np.int64)
        self.disagreement = np.array(state["disagreement"], dtype=float)
        self.mean_personal = {n: t.clone() for n, t in state["mean_personal"].items()}
        if self.store is not None:
            self.store.load_state_dict(state["personal_store"])

    def close(self) -> None:
        if self.store is not None:
            self.store.close()


@STRATEGIES.register
class DropPEFTNoConfigurator(DropPEFT):
    """Ablation: STLD at one fixed ratio + PTLS."""

    name = "droppeft_no_configurator"
    pinned: ClassVar[dict[str, Any]] = {"configurator": False}


@STRATEGIES.register
class DropPEFTNoPTLS(DropPEFT):
    """Ablation: STLD + configurator, every tensor shared."""

    name = "droppeft_no_ptls"
    pinned: ClassVar[dict[str, Any]] = {"ptls": None}
