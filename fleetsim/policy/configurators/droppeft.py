"""DropPEFT's configurator: a bandit over dropout ratios, per-device memory feasibility, straggler balance.

Reconstruction (research/droppeft_reconstruction.md §1.2, [R]):

1. Arms are dropout ratios (with one schedule). For each selected device an arm is *feasible* when the
   update's peak memory under it — frozen weights + trainable state + the activations of the most blocks
   any step can run — fits the device's usable memory. Infeasible arms are never assigned.
2. The policy picks the round's arm a* among the arms feasible for at least one selected device.
3. Straggler balance: the target time T* is the median, over the selected devices, of the expected update
   time at a* (median link speeds, no straggler slow-down). Each device gets the smallest feasible ratio
   whose expected time is within T*, or its fastest feasible arm if none is; slow devices drop more
   blocks, so round times even out. With ``floor`` (the default) a* is the fleet's configuration and a
   floor: only ratios ≥ a* are considered, so fast devices drop a* too (and save its compute and memory)
   while slow ones drop more. Without ``floor`` a device fast enough at full depth trains at full depth
   whatever a* is. Without balance every device gets a* (or its nearest feasible arm).
4. After the round each device's reward (a registered reward function) updates the arm *it* used.

Expected times use the cost model: compute = local_steps · FLOPs(expected active blocks) / FLOP/s,
transfer = bytes · 8 / median Mbit/s + latency, both ways.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from fleetsim.core.dropout import DropoutConfig, expected_active, max_active
from fleetsim.core.evaluation import EvalResult
from fleetsim.core.feedback import RoundExtras, RoundFeedback
from fleetsim.core.updates import TrainConfig
from fleetsim.costs.cost_model import CostModel
from fleetsim.policy.bandits import make_policy
from fleetsim.policy.configurators.base import Configurator, with_dropout
from fleetsim.policy.rewards import REWARDS
from fleetsim.world.fleet import Device

__all__ = ["DropPEFTConfigurator"]


def _median(dist: Any) -> float:
    return float(getattr(dist, "median", getattr(dist, "value", 0.0)))


class DropPEFTConfigurator(Configurator):
    """Per-device dropout ratios from a bandit, memory feasibility and straggler balance."""

    def __init__(
        self,
        base: TrainConfig,
        cost_model: CostModel,
        arms: Sequence[float],
        schedule: str,
        ends: int,
        policy: str,
        policy_params: dict[str, Any],
        reward: str,
        balance_stragglers: bool,
        probe_examples: int,
        rng: np.random.Generator,
        shared: frozenset[str] | None = None,
        floor: bool = True,
        lr_scale: float = 1.0,
    ):
        self.base = base
        self.floor = floor
        self.lr_scale = lr_scale
        self.cost_model = cost_model
        self.arms = [DropoutConfig(ratio=a, schedule=schedule, ends=ends) for a in arms]
        self.policy = make_policy(policy, len(self.arms), rng, policy_params)
        self.reward_name = reward
        self.reward_fn = REWARDS[reward]
        self.balance = balance_stragglers
        self._probe_examples = probe_examples
        self.shared = shared
        self.previous_eval: EvalResult | None = None
        self.assigned: dict[int, int] = {}  # device id → arm index, for the round in flight
        self.global_arm: int | None = None
        self.target_s: float = math.nan

    # ------------------------------------------------------------------------------------------ costs

    def peak_memory_bytes(self, arm: int) -> int:
        cfg, n = self.arms[arm], self.cost_model.model_blocks
        step = self.cost_model.step(self.base.batch_size, self.base.seq_len, max_active(cfg, n))
        return self.cost_model.peak_memory_bytes(self.base.optimizer, step.activation_bytes)

    def feasible(self, device: Device) -> np.ndarray:
        """Arms whose peak memory fits the device's usable memory."""
        usable = device.profile.usable_memory_bytes
        return np.array([self.peak_memory_bytes(a) <= usable for a in range(len(self.arms))])

    def expected_time_s(self, device: Device, arm: int) -> float:
        cfg, n = self.arms[arm], self.cost_model.model_blocks
        blocks = expected_active(cfg, n)
        low, high = math.floor(blocks), math.ceil(blocks)
        b, s = self.base.batch_size, self.base.seq_len
        step_flops = float(self.cost_model.step(b, s, low).flops)
        if high != low:
            step_flops += (blocks - low) * (self.cost_model.step(b, s, high).flops - step_flops)
        p = device.profile
        sent = self.cost_model.sent_bytes(self.shared) * 8
        transfer = sent / (_median(p.downlink_mbps) * 1e6) + sent / (_median(p.uplink_mbps) * 1e6)
        return self.base.local_steps * step_flops / p.train_flops_per_s + transfer + 2 * p.link_latency_s

    # ------------------------------------------------------------------------------------- assignment

    def assign(self, round_idx: int, devices: Sequence[Device]) -> dict[int, TrainConfig]:
        masks = {d.id: self.feasible(d) for d in devices}
        any_feasible = np.any(np.stack(list(masks.values())), axis=0) if masks else np.zeros(len(self.arms), bool)
        self.global_arm = self.policy.choose(any_feasible) if any_feasible.any() else len(self.arms) - 1
        ratios = np.array([a.ratio for a in self.arms])
        order = np.argsort(ratios)
        chosen: dict[int, int] = {}
        if self.balance:
            at_global = [
                self.expected_time_s(d, self._nearest_feasible(masks[d.id], self.global_arm, order)) for d in devices
            ]
            self.target_s = float(np.median(at_global)) if at_global else math.nan
            lowest = ratios[self.global_arm] if self.floor else 0.0
            for d in devices:
                feasible = [a for a in order if masks[d.id][a]]
                options = [a for a in feasible if ratios[a] >= lowest] or feasible[-1:]
                if not options:
                    chosen[d.id] = int(order[-1])  # nothing fits: the strategy should not have selected it
                    continue
                within = [a for a in options if self.expected_time_s(d, a) <= self.target_s * (1 + 1e-9)]
                chosen[d.id] = int(within[0]) if within else int(min(options, key=lambda a: self.expected_time_s(d, a)))
        else:
            self.target_s = math.nan
            for d in devices:
                chosen[d.id] = self._nearest_feasible(masks[d.id], self.global_arm, order)
        self.assigned = chosen
        return {d_id: with_dropout(self.base, self.arms[a], self.lr_scale) for d_id, a in chosen.items()}

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

    def probe_examples(self) -> int:
        return self._probe_examples if self.reward_name.startswith("loss_drop") else 0

    def observe(self, feedback: RoundFeedback) -> RoundExtras:
        rewards = self.reward_fn(feedback, self.previous_eval)
        if feedback.evaluation is not None:
            self.previous_eval = feedback.evaluation
        columns: dict[int, dict[str, object]] = {}
        for rec in feedback.records:
            arm = self.assigned.get(rec.device_id)
            reward = None if rewards is None else rewards.get(rec.device_id)
            if arm is not None and reward is not None:
                self.policy.update(arm, reward)
            columns[rec.device_id] = {"arm": arm, "reward": math.nan if reward is None else reward}
        state = self.policy.state()
        table = [
            {
                "round": feedback.round_idx,
                "arm": a,
                "ratio": self.arms[a].ratio,
                "pulls": state["pulls"][a],
                "mean_reward": state["mean_reward"][a],
                "score": state["score"][a],
            }
            for a in range(len(self.arms))
        ]
        global_ratio = self.arms[self.global_arm].ratio if self.global_arm is not None else math.nan
        return RoundExtras(
            update_columns=columns,
            round_columns={"global_arm_ratio": global_ratio, "target_time_s": self.target_s},
            tables={"bandit": table},
        )
