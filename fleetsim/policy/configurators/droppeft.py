"""DropPEFT's configurator: a bandit over dropout ratios, per-device memory feasibility, straggler balance.

Reconstruction (analysis/research/droppeft_reconstruction.md §1.2, [R]):

1. Arms are dropout ratios (with one schedule). For each selected device an arm is *feasible* when the
   update's peak memory under it — frozen weights + trainable state + the activations of the most blocks
   any step can run — fits the device's usable memory. Infeasible arms are never assigned.
2. The policy picks the round's arm a* among the arms feasible for at least one selected device.
3. Straggler balance: the target time T* is the median, over the selected devices, of the expected update
   time at a* (median conditions: median link speeds, no straggler slow-down). Each device gets the
   smallest feasible ratio whose expected time is within T*, or its fastest feasible arm if none is; slow
   devices drop more blocks, so round times even out. With ``floor`` (the default) a* is the fleet's
   configuration and a floor: only ratios ≥ a* are considered, so fast devices drop a* too (and save its
   compute and memory) while slow ones drop more. Without ``floor`` a device fast enough at full depth
   trains at full depth whatever a* is. Without balance every device gets a* (or its nearest feasible arm).
4. After the round each device's reward (a registered reward, read at the decision precision of
   :mod:`fleetsim.core.precision`) updates the arm *it* used; the arm travels with the device's config.

Expected times come from the one time model (:func:`fleetsim.costs.timing.phase_times`) with the cost
model's FLOPs at the schedule's expected number of active blocks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
from pydantic import Field, ValidationInfo, field_validator

from fleetsim.core.evaluation import EvalResult
from fleetsim.core.precision import decision_value
from fleetsim.core.rounds import Assignment, RoundExtras, RoundFeedback
from fleetsim.core.schedules import DropoutConfig, ScheduleName
from fleetsim.core.state import StateDict
from fleetsim.core.updates import TrainConfig
from fleetsim.costs.cost_model import CostModel
from fleetsim.policy.bandits import POLICIES, PolicyName, make_policy
from fleetsim.policy.configurators.base import (
    Configurator,
    device_rows,
    expected_update_s,
    peak_memory_bytes,
    with_dropout,
)
from fleetsim.policy.rewards import REWARDS, RewardName
from fleetsim.spec.schema import Strict
from fleetsim.world.fleet import Device

__all__ = ["BanditOptions", "DropPEFTConfigurator"]


class BanditOptions(Strict):
    """Options of the bandit configurator (validated when the scenario loads)."""

    arms: list[float] = Field(default_factory=lambda: [0.5, 0.67], min_length=1)
    schedule: ScheduleName = "keep_ends"
    ends: int = Field(1, ge=0)
    policy: PolicyName = "sw_ucb"
    policy_params: Any = Field(
        default_factory=dict, validate_default=True, description="the policy's options (its Params)"
    )
    reward: RewardName = "loss_drop_per_s"
    balance_stragglers: bool = True
    floor: bool = Field(True, description="the policy's ratio is every device's minimum; stragglers drop more")
    lr_scale: float = Field(1.0, gt=0.0, description="learning-rate multiplier while the ratio is above 0")
    probe_examples: int = Field(16, ge=1)

    @field_validator("arms")
    @classmethod
    def _ratios(cls, arms: list[float]) -> list[float]:
        if any(not 0.0 <= a < 1.0 for a in arms):
            raise ValueError("ratios in [0, 1)")
        return arms

    @field_validator("policy_params")
    @classmethod
    def _typed_params(cls, value: Any, info: ValidationInfo) -> Strict:
        """The chosen policy's ``Params`` (an unknown key lists the policy's parameters)."""
        name = info.data.get("policy")
        if name is None:  # the policy name itself was invalid; that error is reported
            return Strict()
        params = POLICIES[name].Params
        if isinstance(value, params):
            return value
        if not isinstance(value, dict) or set(value) - set(params.model_fields):
            raise ValueError(f"parameters of {name} ({', '.join(params.model_fields) or 'none'})")
        return params.model_validate(value)


class DropPEFTConfigurator(Configurator):
    """Per-device dropout ratios from a bandit, memory feasibility and straggler balance."""

    def __init__(
        self,
        base: TrainConfig,
        cost_model: CostModel,
        options: BanditOptions,
        rng: np.random.Generator,
        shard_sizes: Sequence[int] = (),
    ):
        """``shard_sizes``: examples per device id (a small shard trains, and is costed, at a smaller batch)."""
        self.base = base
        self.cost_model = cost_model
        self.shard_sizes = shard_sizes
        self.options = options
        self.arms = [DropoutConfig(ratio=a, schedule=options.schedule, ends=options.ends) for a in options.arms]
        self.policy = make_policy(options.policy, len(self.arms), rng, options.policy_params)
        self.reward = REWARDS[options.reward]()
        self.probe_examples = options.probe_examples if self.reward.needs_probe else 0
        self.previous_eval: EvalResult | None = None  # the last evaluation seen (global rewards compare to it)

    # ------------------------------------------------------------------------------------------ costs

    def rows_per_step(self, device: Device) -> int:
        """The device's mini-batch size (its shard may be smaller than the configured batch)."""
        return device_rows(self.base, self.shard_sizes, device)

    def peak_memory_bytes(self, arm: int, rows: int | None = None) -> int:
        """Peak memory of an update at ``arm`` with ``rows`` examples per step (default: the configured batch)."""
        config = replace(self.base, dropout=self.arms[arm])
        return peak_memory_bytes(self.cost_model, config, rows or self.base.batch_size)

    def feasible(self, device: Device) -> np.ndarray:
        """Arms whose peak memory fits the device's usable memory."""
        usable, rows = device.profile.usable_memory_bytes, self.rows_per_step(device)
        return np.array([self.peak_memory_bytes(a, rows) <= usable for a in range(len(self.arms))])

    def can_train(self, device: Device) -> bool:
        return bool(self.feasible(device).any())

    def expected_time_s(self, device: Device, arm: int, shared: frozenset[str] | None) -> float:
        """Expected update time under median conditions (the simulation's time model)."""
        config = replace(self.base, dropout=self.arms[arm])
        return expected_update_s(self.cost_model, config, self.rows_per_step(device), device, shared)

    def fastest_s(self, device: Device, shared: frozenset[str] | None) -> float:
        feasible = np.flatnonzero(self.feasible(device))
        return min((self.expected_time_s(device, int(a), shared) for a in feasible), default=math.inf)

    # ------------------------------------------------------------------------------------- assignment

    def assign(self, round_idx: int, devices: Sequence[Device], shared: frozenset[str] | None) -> Assignment:
        masks = {d.id: self.feasible(d) for d in devices}
        any_feasible = np.any(np.stack(list(masks.values())), axis=0) if masks else np.zeros(len(self.arms), bool)
        global_arm = self.policy.choose(any_feasible) if any_feasible.any() else len(self.arms) - 1
        ratios = np.array([a.ratio for a in self.arms])
        order = np.argsort(ratios)
        chosen: dict[int, int] = {}
        target_s = math.nan
        if self.options.balance_stragglers:
            at_global = [
                self.expected_time_s(d, self._nearest_feasible(masks[d.id], global_arm, order), shared) for d in devices
            ]
            target_s = float(np.median(at_global)) if at_global else math.nan
            lowest = ratios[global_arm] if self.options.floor else 0.0
            for d in devices:
                feasible = [a for a in order if masks[d.id][a]]
                options = [a for a in feasible if ratios[a] >= lowest] or feasible[-1:]
                if not options:
                    chosen[d.id] = int(order[-1])  # nothing fits: the strategy should not have selected it
                    continue
                times = {int(a): self.expected_time_s(d, a, shared) for a in options}
                within = [a for a in options if times[int(a)] <= target_s * (1 + 1e-9)]
                chosen[d.id] = int(within[0]) if within else int(min(options, key=lambda a: times[int(a)]))
        else:
            for d in devices:
                chosen[d.id] = self._nearest_feasible(masks[d.id], global_arm, order)
        configs = {d_id: self._config(arm) for d_id, arm in chosen.items()}
        columns: dict[str, object] = {"global_arm_ratio": self.arms[global_arm].ratio, "target_time_s": target_s}
        return Assignment(configs, columns)

    def _config(self, arm: int) -> TrainConfig:
        config = with_dropout(self.base, self.arms[arm], self.options.lr_scale)
        return replace(config, arm=arm, probe_examples=self.probe_examples)

    def _nearest_feasible(self, mask: np.ndarray, arm: int, order: np.ndarray) -> int:
        """``arm`` if feasible, else the next larger feasible ratio, else the largest feasible one."""
        if mask[arm]:
            return arm
        position = int(np.flatnonzero(order == arm)[0])
        larger = [a for a in order[position:] if mask[a]]
        if larger:
            return int(larger[0])
        feasible = [a for a in order if mask[a]]
        return int(feasible[-1]) if feasible else int(order[-1])

    # ---------------------------------------------------------------------------------------- learning

    def observe(self, feedback: RoundFeedback) -> RoundExtras:
        rewards = self.reward(feedback, self.previous_eval)
        if feedback.evaluation is not None:
            self.previous_eval = feedback.evaluation
        columns: dict[int, dict[str, object]] = {}
        for rec in feedback.records:
            arm = feedback.plans[rec.device_id].config.arm
            raw = None if rewards is None else rewards.get(rec.device_id)
            reward = None if raw is None else decision_value(raw)
            if arm is not None and reward is not None:
                self.policy.update(arm, reward)
            columns[rec.device_id] = {"arm": arm, "reward": math.nan if reward is None else reward}
        summary = self.policy.summary()
        table: list[dict[str, object]] = [
            {
                "arm": a,
                "ratio": self.arms[a].ratio,
                "pulls": summary["pulls"][a],
                "mean_reward": summary["mean_reward"][a],
                "score": summary["score"][a],
            }
            for a in range(len(self.arms))
        ]
        return RoundExtras(update_columns=columns, tables={"bandit": table})

    # ------------------------------------------------------------------------------------------- state

    def state_dict(self) -> StateDict:
        previous = self.previous_eval
        evaluation = (
            {}
            if previous is None
            else {"accuracy": previous.accuracy, "loss": previous.loss, "n_examples": previous.n_examples}
        )
        return {"policy": self.policy.state_dict(), "previous_eval": evaluation}

    def load_state_dict(self, state: StateDict) -> None:
        self.policy.load_state_dict(state["policy"])
        previous = state["previous_eval"]
        self.previous_eval = (
            EvalResult(float(previous["accuracy"]), float(previous["loss"]), int(previous["n_examples"]))
            if previous
            else None
        )
