"""Bandit policies over a fixed set of arms: pure math, no SimPy, seeded ``rng`` injected.

Each policy keeps its state in plainly named arrays, chooses among the *feasible* arms it is offered and
learns from ``(arm, reward)`` pairs. Rewards are raw (e.g. loss drop per simulated second); scores divide
mean rewards by the largest absolute reward seen so far, so exploration bonuses live on a [−1, 1] scale
whatever the reward's units. Arms never tried are tried first (lowest index first).

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
from typing import Any, ClassVar

import numpy as np

__all__ = ["POLICIES", "Policy", "make_policy"]

POLICIES: dict[str, type[Policy]] = {}


def _ucb(means: np.ndarray, pulls: np.ndarray, c: float, log_term: float) -> np.ndarray:
    """mean + c·√(2·log_term / n_a), +inf for arms never pulled."""
    with np.errstate(divide="ignore", invalid="ignore"):
        bonus = c * np.sqrt(2.0 * log_term / pulls)
    return np.where(pulls > 0, means + bonus, np.inf)


def register_policy(cls: type[Policy]) -> type[Policy]:
    POLICIES[cls.name] = cls
    return cls


class Policy(ABC):
    """A bandit over ``n_arms`` arms."""

    name: ClassVar[str]

    def __init__(self, n_arms: int, rng: np.random.Generator):
        self.n_arms = n_arms
        self.rng = rng
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

    def state(self) -> dict[str, Any]:
        return {"pulls": self.pulls.tolist(), "mean_reward": self.means().tolist(), "score": self.scores().tolist()}


@register_policy
class UCB1(Policy):
    name = "ucb1"

    def __init__(self, n_arms: int, rng: np.random.Generator, c: float = 0.5):
        super().__init__(n_arms, rng)
        self.c = c

    def scores(self) -> np.ndarray:
        return _ucb(self.means(), self.pulls, self.c, math.log(max(self.pulls.sum(), 1.0)))


@register_policy
class SlidingWindowUCB(Policy):
    name = "sw_ucb"

    def __init__(self, n_arms: int, rng: np.random.Generator, c: float = 0.5, window: int = 40):
        super().__init__(n_arms, rng)
        self.c = c
        self.window = window
        self.recent: deque[tuple[int, float]] = deque(maxlen=window)

    def update(self, arm: int, reward: float) -> None:
        self.t += 1
        self.scale = max(self.scale, abs(reward))
        self.recent.append((arm, reward))
        self.pulls = np.zeros(self.n_arms)
        self.reward_sum = np.zeros(self.n_arms)
        for a, r in self.recent:
            self.pulls[a] += 1
            self.reward_sum[a] += r

    def scores(self) -> np.ndarray:
        return _ucb(self.means(), self.pulls, self.c, math.log(max(min(self.t, self.window), 1)))


@register_policy
class DiscountedUCB(Policy):
    name = "discounted_ucb"

    def __init__(self, n_arms: int, rng: np.random.Generator, c: float = 0.5, gamma: float = 0.95):
        super().__init__(n_arms, rng)
        self.c = c
        self.gamma = gamma

    def update(self, arm: int, reward: float) -> None:
        self.pulls *= self.gamma
        self.reward_sum *= self.gamma
        super().update(arm, reward)

    def scores(self) -> np.ndarray:
        return _ucb(self.means(), self.pulls, self.c, math.log(max(self.pulls.sum(), 1.0 + 1e-9)))


@register_policy
class EpsilonGreedy(Policy):
    name = "epsilon_greedy"

    def __init__(self, n_arms: int, rng: np.random.Generator, epsilon: float = 0.3, decay: float = 0.05):
        super().__init__(n_arms, rng)
        self.epsilon = epsilon
        self.decay = decay

    def current_epsilon(self) -> float:
        return self.epsilon / (1.0 + self.decay * self.t)

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


@register_policy
class GaussianThompson(Policy):
    name = "thompson"

    def __init__(self, n_arms: int, rng: np.random.Generator, prior_sigma: float = 1.0):
        super().__init__(n_arms, rng)
        self.prior_sigma = prior_sigma
        self.square_sum = np.zeros(n_arms)

    def update(self, arm: int, reward: float) -> None:
        super().update(arm, reward)
        self.square_sum[arm] += reward * reward

    def spread(self) -> float:
        """Pooled standard deviation of the (scaled) rewards; the prior's until two rewards are seen."""
        n = self.pulls.sum()
        if n < 2 or self.scale == 0:
            return self.prior_sigma
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


def make_policy(name: str, n_arms: int, rng: np.random.Generator, params: dict[str, Any]) -> Policy:
    return POLICIES[name](n_arms, rng, **params)
