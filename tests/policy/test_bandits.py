"""Bandit policies against their formulas; typed parameters; state that round-trips through state_dict."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pydantic import ValidationError

from fleetsim.policy.bandits import POLICIES, make_policy

ALL = np.ones(3, dtype=bool)
# (arm, reward) pairs fed to every policy after it tried each arm once.
HISTORY = [(0, 1.0), (1, 2.0), (2, 0.5), (1, 1.5), (0, 0.2), (1, 2.5)]


def _fed(name: str, **params):
    policy = make_policy(name, 3, np.random.default_rng(0), params)
    for arm, reward in HISTORY:
        policy.update(arm, reward)
    return policy


def test_untried_arms_come_first_lowest_index_first():
    for name in POLICIES:
        policy = make_policy(name, 3, np.random.default_rng(0), {"epsilon": 0.0} if name == "epsilon_greedy" else {})
        assert policy.choose(ALL) == 0, name
        policy.update(0, 1.0)
        assert policy.choose(ALL) == 1, name
        assert policy.choose(np.array([True, False, True])) == 2, name


def test_ucb1_matches_its_formula():
    p = _fed("ucb1", c=0.5)
    pulls = np.array([2, 3, 1])
    means = np.array([(1.0 + 0.2) / 2, (2.0 + 1.5 + 2.5) / 3, 0.5]) / 2.5  # scaled by max |reward|
    expected = means + 0.5 * np.sqrt(2 * math.log(6) / pulls)
    assert np.allclose(p.scores(), expected)
    assert p.choose(ALL) == int(np.argmax(expected))
    assert p.choose(np.array([True, False, True])) == int(np.argmax(np.where([1, 0, 1], expected, -np.inf)))


def test_sliding_window_ucb_forgets_old_rewards():
    p = _fed("sw_ucb", c=0.5, window=3)  # only (1, 1.5), (0, 0.2), (1, 2.5) remain
    assert p.pulls.tolist() == [1, 2, 0]
    assert p.choose(ALL) == 2, "arm 2 fell out of the window: untried again"
    means = np.array([0.2, (1.5 + 2.5) / 2]) / 2.5
    expected = means + 0.5 * np.sqrt(2 * math.log(3) / np.array([1, 2]))
    assert np.allclose(p.scores()[:2], expected)


def test_discounted_ucb_matches_its_formula():
    g = 0.9
    p = _fed("discounted_ucb", c=0.5, gamma=g)
    weights = [g ** (len(HISTORY) - 1 - i) for i in range(len(HISTORY))]
    pulls = np.zeros(3)
    sums = np.zeros(3)
    for (arm, reward), w in zip(HISTORY, weights, strict=True):
        pulls[arm] += w
        sums[arm] += w * reward
    expected = sums / pulls / 2.5 + 0.5 * np.sqrt(2 * math.log(pulls.sum()) / pulls)
    assert np.allclose(p.scores(), expected)
    assert p.choose(ALL) == int(np.argmax(expected))


def test_epsilon_greedy_explores_with_its_rng_and_exploits_the_best_mean():
    p = _fed("epsilon_greedy", epsilon=0.3, decay=0.05)
    twin = np.random.default_rng(0)
    eps = 0.3 / (1 + 0.05 * 6)
    for _ in range(50):
        explore = twin.random() < eps
        expected = int(twin.choice([0, 1, 2])) if explore else 1  # arm 1 has the best mean
        assert p.choose(ALL) == expected


def test_thompson_draws_from_the_gaussian_posterior():
    p = _fed("thompson")
    twin = np.random.default_rng(0)
    rewards = np.array([r for _, r in HISTORY]) / 2.5
    sigma = max(float(np.sqrt(np.mean(rewards**2) - np.mean(rewards) ** 2)), 1e-3)
    means = np.array([(1.0 + 0.2) / 2, 2.0, 0.5]) / 2.5
    for _ in range(20):
        draws = twin.normal(means, sigma / np.sqrt(np.array([2, 3, 1]) + 1.0))
        assert p.choose(ALL) == int(np.argmax(draws))


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_a_restored_policy_chooses_exactly_as_the_original(name):
    original = _fed(name)
    state = original.state_dict()
    leaves = [v for v in state.values()]
    assert all(isinstance(v, int | float | np.ndarray) for v in leaves), "plain numbers and arrays only"
    restored = make_policy(name, 3, np.random.default_rng(12345), {})
    restored.load_state_dict(state)
    for step in range(30):
        arm = original.choose(ALL)
        assert restored.choose(ALL) == arm, (name, step)
        reward = 0.1 * ((step * 7) % 5)
        original.update(arm, reward)
        restored.update(arm, reward)
    assert np.allclose(original.scores(), restored.scores(), equal_nan=True)


def test_unknown_policy_parameter_is_rejected():
    with pytest.raises(ValidationError, match="window"):
        make_policy("ucb1", 3, np.random.default_rng(0), {"window": 5})
