"""``oort``: guided participant selection after Oort (Lai et al., OSDI 2021, §4).

A device's utility is its statistical utility times a penalty for being slower than the preferred round
duration ``T``:

    util(i) = |B_i| · L_i · (T / t_i)^(α · [t_i > T])  +  sqrt(0.1 · ln(r) / r_i)      (Oort Eq. 2 and §4.2)

``|B_i|`` is the device's number of training examples; ``L_i`` the mean training loss of its last
delivered update — Oort uses the root-mean-square per-example loss, which a federated client reports;
fleetsim's trainer keeps the mean mini-batch loss, a lower bound of it; ``t_i`` the planned duration of its
last update (or, never selected, the expected time of its fastest feasible update); the last term favours
devices not selected since round ``r_i`` (temporal uncertainty). Each round a share ε of the ``k`` seats
explores devices never selected (drawn with probability ∝ 1 / expected time, faster first); the rest
exploit: candidates whose utility is at least ``cutoff`` × the utility of the (k − explore)-th best, drawn
with probability ∝ utility. ε decays from ``exploration`` by ``exploration_decay`` per round down to
``exploration_min``. Defaults follow the Oort paper's evaluation settings (α = 2, ε = 0.9 → 0.3, ×0.98).
"""

from __future__ import annotations

import math

import numpy as np
from pydantic import Field, PositiveFloat

from fleetsim.core.rounds import RoundFeedback
from fleetsim.core.state import StateDict
from fleetsim.policy.selection.base import SELECTORS, SelectionInput, Selector
from fleetsim.spec.schema import Strict
from fleetsim.world.fleet import Device

__all__ = ["Oort"]


class OortOptions(Strict):
    preferred_round_s: PositiveFloat | None = Field(
        None, description="T: updates longer than this are penalized (null: the candidates' median expected time)"
    )
    alpha: float = Field(2.0, ge=0.0, description="straggler penalty exponent")
    exploration: float = Field(0.9, ge=0.0, le=1.0, description="initial share of seats that explore")
    exploration_decay: float = Field(0.98, gt=0.0, le=1.0)
    exploration_min: float = Field(0.3, ge=0.0, le=1.0)
    cutoff: float = Field(0.95, gt=0.0, le=1.0, description="exploit among utilities ≥ cutoff × the k-th best")


@SELECTORS.register
class Oort(Selector):
    """Utility-guided selection with exploration; learns from every finished round."""

    name = "oort"
    Options = OortOptions

    def __init__(self, options: Strict):
        super().__init__(options)
        assert isinstance(options, OortOptions)
        self.opts = options
        self.stat_util: dict[int, float] = {}  # device → |B| · loss of its last delivered update
        self.duration_s: dict[int, float] = {}  # device → planned duration of its last update
        self.last_round: dict[int, int] = {}  # device → the last round it was selected in

    def exploration(self, round_idx: int) -> float:
        o = self.opts
        return max(o.exploration_min, o.exploration * o.exploration_decay**round_idx)

    def utility(self, device: Device, problem: SelectionInput, preferred_s: float) -> float:
        t = self.duration_s.get(device.id, problem.expected_s(device))
        util = self.stat_util[device.id]
        if t > preferred_s:
            util *= (preferred_s / t) ** self.opts.alpha
        since = self.last_round.get(device.id)
        if since is not None and problem.round_idx > 1:
            util += math.sqrt(0.1 * math.log(problem.round_idx) / max(since, 1))
        return util

    def select(self, problem: SelectionInput) -> list[Device]:
        candidates = [d for d in problem.candidates if math.isfinite(problem.expected_s(d))]
        k = min(problem.k, len(candidates))
        if k == 0:
            return []
        rng = problem.rng
        preferred = self.opts.preferred_round_s or float(np.median([problem.expected_s(d) for d in candidates]))
        explored = [d for d in candidates if d.id in self.stat_util]
        fresh = [d for d in candidates if d.id not in self.stat_util]
        n_exploit = min(len(explored), k - min(len(fresh), round(self.exploration(problem.round_idx) * k)))
        chosen: list[Device] = []
        if n_exploit > 0:
            utils = np.array([self.utility(d, problem, preferred) for d in explored])
            order = np.argsort(-utils, kind="stable")
            pool = [int(i) for i in order if utils[i] >= self.opts.cutoff * utils[order[n_exploit - 1]]]
            weights = np.maximum(utils[pool], 1e-12)
            picked = rng.choice(len(pool), size=n_exploit, replace=False, p=weights / weights.sum())
            chosen += [explored[pool[int(i)]] for i in picked]
        n_explore = min(len(fresh), k - len(chosen))
        if n_explore > 0:
            speed = np.array([1.0 / max(problem.expected_s(d), 1e-9) for d in fresh])
            picked = rng.choice(len(fresh), size=n_explore, replace=False, p=speed / speed.sum())
            chosen += [fresh[int(i)] for i in picked]
        return sorted(chosen, key=lambda d: d.id)

    def observe(self, feedback: RoundFeedback) -> None:
        for rec in feedback.records:
            self.last_round[rec.device_id] = feedback.round_idx
            self.duration_s[rec.device_id] = rec.download_s + rec.compute_s + rec.upload_s
        for res in feedback.results:
            self.stat_util[res.plan.device_id] = res.plan.n_samples * res.train_loss_mean

    def state_dict(self) -> StateDict:
        return {
            "stat_util": _arrays(self.stat_util, float),
            "duration_s": _arrays(self.duration_s, float),
            "last_round": _arrays(self.last_round, np.int64),
        }

    def load_state_dict(self, state: StateDict) -> None:
        self.stat_util = {i: float(v) for i, v in _pairs(state["stat_util"])}
        self.duration_s = {i: float(v) for i, v in _pairs(state["duration_s"])}
        self.last_round = {i: int(v) for i, v in _pairs(state["last_round"])}


def _arrays(values: dict[int, float] | dict[int, int], dtype: type) -> StateDict:
    ids = np.array(sorted(values), dtype=np.int64)
    return {"ids": ids, "values": np.array([values[int(i)] for i in ids], dtype=dtype)}


def _pairs(state: StateDict) -> list[tuple[int, float]]:
    return [(int(i), float(v)) for i, v in zip(state["ids"], state["values"], strict=True)]
