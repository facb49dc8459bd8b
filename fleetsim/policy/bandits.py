"""Bandit policies over a fixed set of arms: pure math, no SimPy, no torch, seeded ``rng`` injected.

Each policy keeps its state in plainly named arrays, chooses among the *feasible* arms it is offered and
learns from ``(arm, reward)`` pairs. Rewards are raw (e.g. loss drop per simulated second); scores divide
mean rewards by the largest absolute reward seen so far, so exploration bonuses live on a [−1, 1] scale
whatever the reward's units. Arms never tried are tried first (lowest index first). A policy's options
are a typed ``Params`` model, validated when the scenario loads; its state (arrays, numbers and its
generator's state) round-trips through ``state_dict`` / ``load_state_dict``.

* ``ucb1`` — Auer, Cesa-Bianchi & Fischer 2002: mean + c·√(2 ln n / n_a).
* ``sw_ucb`` — sliding-window UCB, Garivier & Moulines 2011: the same over the last ``window`` rewards.
* ``discounted_ucb`` — Garivier & Moulines 2011: rewards discounted by ``gamma`` per observation.
* ``epsilon_greedy`` — ε_t = ε₀ / (1 + decay·t): a uniform feasible arm with probability ε_t, else the best mean.
* ``thompson`` — Gaussian Thompson sampling: draw μ_a ~ N(mean_a, σ² / (n_a + 1)), σ = reward spread.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar

import numpy as np
from pydantic import AfterValidator, Field

from fleetsim.core.registry import Registry
from fleetsim.core.rng import generator_state, set_generator_state
from fleetsim.core.state import StateDict
from fleetsim.spec.schema import Strict

__all__ = ["POLICIES", "Policy", "PolicyName", "make_policy"]

POLICIES: Registry[type[Policy]] = Registry(
    "bandit policy", "fleetsim.policies", lambda c: isinstance(c, type) and issubclass(c, Policy)
)
PolicyName = Annotated[str, AfterValidator(POLICIES.check)]


def _ucb(means: np.ndarray, pulls: np.ndarray, c: float, log_term: float) -> np.ndarray:
    """mean + c·√(2·log_term / n_a), +inf for arms never pulled."""
    with np.errstate(divide="ignore", invalid="ignore"):
        bonus = c * np.sqrt(2.0 * log_term / pulls)
    return np.where(pulls > 0, means + bonus, np.inf)


class NoParams(Strict):
    """A policy without options."""


class Policy(ABC):
    """A bandit over ``n_arms`` arms."""

    name: ClassVar[str]
    Params: ClassVar[type[Strict]] = NoParams

    def __init__(self, n_arms: int, rng: np.random.Generator, params: Strict):
        self.n_arms = n_arms
        self.rng = rng
        self.params = params
        self.pulls = np.zeros(n_arms)  # observations per arm (discounted for discounted_ucb)
        self.reward_sum = np.zeros(n_arms)
        self.scale = 0.0  # largest |reward| seen: rewards are compared in units of it
        self.t = 0  # observations so far

    def means(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            raw = np.where(self.pulls > 0, self.reward_sum / np.maximum(self.pulls, 1e-300), 0.0)
        return raw / self.scale if self.scale > 0 else raw

    @abstractmethod
    def scores(self) -> np.ndarray:
        """Current score of every arm (what ``choose`` maximises); +inf for untried arms."""

    def choose(self, feasible: np.ndarray) -> int:
        """Index of the chosen arm among those with ``feasible[a]`` True."""
        if not feasible.any():
            raise ValueError("no feasible arm")
        scores = np.where(feasible, self.scores(), -np.inf)
        return int(np.argmax(scores))  # ties: lowest index

    def update(self, arm: int, reward: float) -> None:
        self.t += 1
        self.scale = max(self.scale, abs(reward))
        self.pulls[arm] += 1
        self.reward_sum[arm] += reward

    def summary(self) -> dict[str, list[float]]:
        """Per arm: pulls, mean reward (scaled) and score, for the ``bandit`` table."""
        return {"pulls": self.pulls.tolist(), "mean_reward": self.means().tolist(), "score": self.scores().tolist()}

    def state_dict(self) -> StateDict:
        return {
            "pulls": self.pulls.copy(),
            "reward_sum": self.reward_sum.copy(),
            "scale": self.scale,
            "t": self.t,
            "rng": generator_state(self.rng),
        }

    def load_state_dict(self, state: StateDict) -> None:
        self.pulls = np.array(state["pulls"], dtype=float)
        self.reward_sum = np.array(state["reward_sum"], dtype=float)
        self.scale = float(state["scale"])
        self.t = int(state["t"])
        set_generator_state(self.rng, state["rng"])


class UCBParams(Strict):
    c: float = Field(0.5, ge=0.0, description="weight of the exploration bonus")


@POLICIES.register
class UCB1(Policy):
    name = "ucb1"
    Params = UCBParams

    def scores(self) -> np.ndarray:
        assert isinstance(self.params, UCBParams)
        return _ucb(self.means(), self.pulls, self.params.c, math.log(max(self.pulls.sum(), 1.0)))


class SlidingWindowParams(UCBParams):
    window: int = Field(40, ge=1, description="rewards remembered")


@POLICIES.register
class SlidingWindowUCB(Policy):
    name = "sw_ucb"
    Params = SlidingWindowParams

    def __init__(self, n_arms: int, rng: np.random.Generator, params: Strict):
        super().__init__(n_arms, rng, params)
        assert isinstance(params, SlidingWindowParams)
        self.window = params.window
        self.recent: deque[tuple[int, float]] = deque(maxlen=params.window)

    def update(self, arm: int, reward: float) -> None:
        self.t += 1
        self.scale = max(self.scale, abs(reward))
        self.recent.append((arm, reward))
        self._recount()

    def _recount(self) -> None:
        self.pulls = np.zeros(self.n_arms)
        self.reward_sum = np.zeros(self.n_arms)
        for a, r in self.recent:
            self.pulls[a] += 1
            self.reward_sum[a] += r

    def scores(self) -> np.ndarray:
        assert isinstance(self.params, SlidingWindowParams)
        return _ucb(self.means(), self.pulls, self.params.c, math.log(max(min(self.t, self.window), 1)))

    def state_dict(self) -> StateDict:
        return {
            **super().state_dict(),
            "recent_arms": np.array([a for a, _ in self.recent], dtype=np.int64),
            "recent_rewards": np.array([r for _, r in self.recent], dtype=float),
        }

    def load_state_dict(self, state: StateDict) -> None:
        super().load_state_dict(state)
        self.recent = deque(
            zip((int(a) for a in state["recent_arms"]), (float(r) for r in state["recent_rewards"]), strict=True),
            maxlen=self.window,
        )


class DiscountedParams(UCBParams):
    gamma: float = Field(0.95, gt=0.0, le=1.0, description="discount of past rewards per observation")


@POLICIES.register
class DiscountedUCB(Policy):
    name = "discounted_ucb"
    Params = DiscountedParams

    def update(self, arm: int, reward: float) -> None:
        assert isinstance(self.params, DiscountedParams)
        self.pulls *= self.params.gamma
        self.reward_sum *= self.params.gamma
        super().update(arm, reward)

    def scores(self) -> np.ndarray:
        assert isinstance(self.params, DiscountedParams)
        return _ucb(self.means(), self.pulls, self.params.c, math.log(max(self.pulls.sum(), 1.0 + 1e-9)))


class EpsilonGreedyParams(Strict):
    epsilon: float = Field(0.3, ge=0.0, le=1.0, description="exploration probability at the start")
    decay: float = Field(0.05, ge=0.0, description="ε_t = ε / (1 + decay·t)")


@POLICIES.register
class EpsilonGreedy(Policy):
    name = "epsilon_greedy"
    Params = EpsilonGreedyParams

    def current_epsilon(self) -> float:
        assert isinstance(self.params, EpsilonGreedyParams)
        return self.params.epsilon / (1.0 + self.params.decay * self.t)

    def scores(self) -> np.ndarray:
        return np.where(self.pulls > 0, self.means(), np.inf)

    def choose(self, feasible: np.ndarray) -> int:
        if not feasible.any():
            raise ValueError("no feasible arm")
        explore = self.rng.random() < self.current_epsilon()
        options = np.flatnonzero(feasible)
        if explore:
            return int(self.rng.choice(options))
        return super().choose(feasible)


class ThompsonParams(Strict):
    prior_sigma: float = Field(1.0, gt=0.0, description="reward spread assumed until two rewards are seen")


@POLICIES.register
class GaussianThompson(Policy):
    name = "thompson"
    Params = ThompsonParams

    def __init__(self, n_arms: int, rng: np.random.Generator, params: Strict):
        super().__init__(n_arms, rng, params)
        self.square_sum = np.zeros(n_arms)

    def update(self, arm: int, reward: float) -> None:
        super().update(arm, reward)
        self.square_sum[arm] += reward * reward

    def spread(self) -> float:
        """Pooled standard deviation of the (scaled) rewards; the prior's until two rewards are seen."""
        assert isinstance(self.params, ThompsonParams)
        n = self.pulls.sum()
        if n < 2 or self.scale == 0:
            return self.params.prior_sigma
        mean = self.reward_sum.sum() / n
        var = max(self.square_sum.sum() / n - mean * mean, 0.0)
        return max(math.sqrt(var) / self.scale, 1e-3)

    def scores(self) -> np.ndarray:
        return np.where(self.pulls > 0, self.means(), np.inf)

    def choose(self, feasible: np.ndarray) -> int:
        if not feasible.any():
            raise ValueError("no feasible arm")
        untried = feasible & (self.pulls == 0)
        if untried.any():
            return int(np.flatnonzero(untried)[0])
        draws = self.rng.normal(self.means(), self.spread() / np.sqrt(self.pulls + 1.0))
        return int(np.argmax(np.where(feasible, draws, -np.inf)))

    def state_dict(self) -> StateDict:
        return {**super().state_dict(), "square_sum": self.square_sum.copy()}

    def load_state_dict(self, state: StateDict) -> None:
        super().load_state_dict(state)
        self.square_sum = np.array(state["square_sum"], dtype=float)


def make_policy(name: str, n_arms: int, rng: np.random.Generator, params: Strict | Mapping[str, Any]) -> Policy:
    """The registered policy ``name``; ``params`` is its ``Params`` model or a mapping validated into one."""
    cls = POLICIES[name]
    typed = params if isinstance(params, Strict) else cls.Params.model_validate(dict(params))
    return cls(n_arms, rng, typed)
