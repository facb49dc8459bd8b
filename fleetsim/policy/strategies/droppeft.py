"""``droppeft``: STLD + the bandit configurator + personalized layer sharing (PTLS), and its ablations.

* ``droppeft`` — per-device dropout ratios from :class:`~fleetsim.policy.configurators.droppeft.DropPEFTConfigurator`,
  the LoRA of the last block personal (kept on devices, :mod:`fleetsim.policy.ptls`), per-block FedAvg of the
  shared tensors only; only shared tensors travel. The split is an option (``ptls``); the default was
  chosen by measurement: keeping the deeper half and the head personal cost the global model too much on
  phones_mixed (README, "DropPEFT on phones_mixed").
* ``droppeft_no_configurator`` — the same with one fixed ratio for every device (``fixed_ratio``).
* ``droppeft_no_ptls`` — the configurator, everything shared.

Devices for which no arm fits in memory are not selected (they could only fail with ``oom``).
Global accuracy under PTLS is that of the shared blocks with the *mean* of the devices' personal tensors —
a model the simulator assembles for reporting; personal tensors never travel. The mean personalized
accuracy (each device's own model on its local held-out data) is reported next to it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from pydantic import Field, model_validator

from fleetsim.core.dropout import DropoutConfig
from fleetsim.core.feedback import RoundExtras, RoundFeedback
from fleetsim.core.updates import UpdateResult
from fleetsim.policy.aggregation import block_fedavg
from fleetsim.policy.bandits import POLICIES
from fleetsim.policy.configurators.base import Configurator, FixedConfigurator, with_dropout
from fleetsim.policy.configurators.droppeft import DropPEFTConfigurator
from fleetsim.policy.ptls import PersonalStore, block_disagreement, personal_names
from fleetsim.policy.rewards import REWARDS
from fleetsim.policy.strategies.base import Strategy, StrategyContext, register_strategy
from fleetsim.spec.schema import Strict
from fleetsim.world.fleet import Device


class PTLSOptions(Strict):
    mode: Literal["fixed", "disagreement"] = "fixed"
    shared_blocks: int | None = Field(None, ge=0, description="fixed: blocks 0..K-1 shared; null: all but the last")
    personal_blocks: int = Field(1, ge=0, description="disagreement: how many blocks become personal")
    choose_after_rounds: int = Field(2, ge=1, description="disagreement: rounds observed before the split")
    head_personal: bool = False


class DropPEFTOptions(Strict):
    arms: list[float] = Field(default_factory=lambda: [0.5, 0.67], min_length=1)
    schedule: Literal["uniform", "depth", "exact_k", "keep_ends"] = "keep_ends"
    ends: int = Field(1, ge=0)
    policy: str = "sw_ucb"
    policy_params: dict[str, Any] = Field(default_factory=dict)
    reward: str = "loss_drop_per_s"
    balance_stragglers: bool = True
    floor: bool = Field(True, description="the policy's ratio is every device's minimum; stragglers drop more")
    lr_scale: float = Field(1.0, gt=0.0, description="learning-rate multiplier while the ratio is above 0")
    probe_examples: int = Field(16, ge=1)
    configurator: bool = True
    fixed_ratio: float = Field(0.5, ge=0.0, lt=1.0, description="ratio used when configurator is false")
    ptls: PTLSOptions | None = Field(default_factory=PTLSOptions)

    @model_validator(mode="after")
    def _known_names(self) -> DropPEFTOptions:
        if self.policy not in POLICIES:
            raise ValueError(f"policy must be one of {sorted(POLICIES)}, got {self.policy!r}")
        if self.reward not in REWARDS:
            raise ValueError(f"reward must be one of {sorted(REWARDS)}, got {self.reward!r}")
        if any(not 0.0 <= a < 1.0 for a in self.arms):
            raise ValueError(f"arms must be ratios in [0, 1), got {self.arms}")
        return self


@register_strategy
class DropPEFT(Strategy):
    name = "droppeft"
    Options = DropPEFTOptions

    # Options an ablation pins whatever the scenario says (see the subclasses below).
    pinned: ClassVar[dict[str, Any]] = {}

    def __init__(self, ctx: StrategyContext, options: Strict):
        assert isinstance(options, DropPEFTOptions)
        options = options.model_copy(update=self.pinned)
        self.opts = options
        self.personal: frozenset[str] = frozenset()
        self.store: PersonalStore | None = None
        self.mean_personal: dict[str, torch.Tensor] = {}  # population mean of personal tensors
        ptls = options.ptls
        if ptls is not None:
            self.store = PersonalStore()
            if ptls.mode == "fixed":
                k = ctx.n_blocks - 1 if ptls.shared_blocks is None else min(ptls.shared_blocks, ctx.n_blocks)
                self.personal = personal_names(ctx.block_of, set(range(k, ctx.n_blocks)), ptls.head_personal)
            self.disagreement = np.zeros(ctx.n_blocks)
        super().__init__(ctx, options)

    def make_configurator(self) -> Configurator:
        o, ctx = self.opts, self.ctx
        if not o.configurator:
            dropout = DropoutConfig(ratio=o.fixed_ratio, schedule=o.schedule, ends=o.ends)
            return FixedConfigurator(with_dropout(ctx.base_config, dropout, o.lr_scale))
        return DropPEFTConfigurator(
            ctx.base_config,
            ctx.cost_model,
            o.arms,
            o.schedule,
            o.ends,
            o.policy,
            o.policy_params,
            o.reward,
            o.balance_stragglers,
            o.probe_examples,
            ctx.streams.generator("policy"),
            shared=self.shared_names(),
            floor=o.floor,
            lr_scale=o.lr_scale,
        )

    # ------------------------------------------------------------------------------------- selection

    def select(self, round_idx: int, available: Sequence[Device], k: int) -> list[Device]:
        if isinstance(self.configurator, DropPEFTConfigurator):
            conf = self.configurator
            available = [d for d in available if conf.feasible(d).any()]
        return super().select(round_idx, available, k)

    # ------------------------------------------------------------------------------------------- PTLS

    def shared_names(self) -> frozenset[str] | None:
        if not self.personal:
            return None
        return frozenset(n for n in self.ctx.block_of if n not in self.personal)

    def start_state(
        self, round_idx: int, device_id: int, global_state: dict[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        """Shared tensors from the server; personal ones from the device's store, or — for a device that has
        not trained yet — the population mean of the personal tensors (a FedPer-style warm start, [R])."""
        if self.store is None or not self.personal:
            return global_state
        own = self.store.get(device_id) or self.mean_personal
        return {
            name: own.get(name, tensor) if name in self.personal else tensor for name, tensor in global_state.items()
        }

    def device_state(self, device_id: int, global_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return self.start_state(-1, device_id, global_state)

    def eval_state(self, global_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        if not self.mean_personal:
            return global_state
        return {n: self.mean_personal.get(n, t) for n, t in global_state.items()}

    def _refresh_mean_personal(self, global_state: dict[str, torch.Tensor]) -> None:
        assert self.store is not None
        devices = self.store.devices()
        if not devices:
            return
        sums = {name: torch.zeros_like(global_state[name]) for name in self.personal}
        for d in devices:
            own = self.store.get(d) or {}
            for name in self.personal:
                sums[name] += own.get(name, global_state[name])
        self.mean_personal = {name: total / len(devices) for name, total in sums.items()}

    def aggregate(
        self, round_idx: int, global_state: dict[str, torch.Tensor], results: Sequence[UpdateResult]
    ) -> dict[str, torch.Tensor]:
        if not results:
            return global_state
        ptls = self.opts.ptls
        if ptls is not None and ptls.mode == "disagreement" and not self.personal:
            self.disagreement += block_disagreement(global_state, results, self.ctx.block_of, self.ctx.n_blocks)
            if round_idx + 1 >= ptls.choose_after_rounds:
                worst = set(np.argsort(-self.disagreement)[: ptls.personal_blocks].tolist())
                self.personal = personal_names(self.ctx.block_of, worst, ptls.head_personal)
                if isinstance(self.configurator, DropPEFTConfigurator):
                    self.configurator.shared = self.shared_names()
        merged = block_fedavg(global_state, results, self.ctx.block_of)
        if self.store is not None and self.personal:
            for r in results:
                self.store.put(r.plan.device_id, {n: r.state[n] for n in self.personal})
            merged = {n: (global_state[n] if n in self.personal else t) for n, t in merged.items()}
            self._refresh_mean_personal(global_state)
        return merged

    def observe(self, feedback: RoundFeedback) -> RoundExtras:
        extras = super().observe(feedback)
        extras.round_columns["personal_tensors"] = len(self.personal)
        return extras

    def close(self) -> None:
        if self.store is not None:
            self.store.close()


@register_strategy
class DropPEFTNoConfigurator(DropPEFT):
    """Ablation: STLD at one fixed ratio + PTLS."""

    name = "droppeft_no_configurator"
    pinned: ClassVar[dict[str, Any]] = {"configurator": False}


@register_strategy
class DropPEFTNoPTLS(DropPEFT):
    """Ablation: STLD + configurator, every tensor shared."""

    name = "droppeft_no_ptls"
    pinned: ClassVar[dict[str, Any]] = {"ptls": None}
