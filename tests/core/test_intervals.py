"""Intervals: Wilson for an accuracy on n examples, bootstrap over seeds, t bands over curves."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fleetsim.core.intervals import bootstrap_interval, t_interval, wilson_interval


def test_wilson_interval_matches_the_textbook_values():
    # 8 of 10: [0.490, 0.943] (Brown, Cai & DasGupta 2001). In general the bounds are the roots of
    # (p̂ − p)² = z² p (1 − p) / n, i.e. (1 + z²/n) p² − (2p̂ + z²/n) p + p̂² = 0.
    assert wilson_interval(0.8, 10) == pytest.approx((0.4902, 0.9433), abs=1e-4)
    z2, p_hat, n = 1.959963984540054**2, 0.85, 800
    roots = np.sort(np.roots([1 + z2 / n, -(2 * p_hat + z2 / n), p_hat**2]))
    assert wilson_interval(p_hat, n) == pytest.approx(tuple(roots), abs=1e-12)
    low, high = wilson_interval(1.0, 50)
    assert high == 1.0 and low == pytest.approx(0.9287, abs=1e-4), "never outside [0, 1]"
    assert all(math.isnan(v) for v in wilson_interval(0.5, 0))


def test_bootstrap_interval_covers_the_mean_and_is_reproducible():
    values = [1.0, 2.0, 3.0, 4.0, 5.0]
    low, high = bootstrap_interval(values)
    assert low < 3.0 < high and (low, high) == bootstrap_interval(values)
    assert bootstrap_interval([2.0, 2.0, 2.0]) == (2.0, 2.0)
    assert all(math.isnan(v) for v in bootstrap_interval([7.0]))


def test_t_interval_of_curves():
    curves = np.array([[1.0, 2.0], [2.0, 3.0], [3.0, 5.0]])
    low, high = t_interval(curves)
    half = 4.302652729911275 * curves.std(axis=0, ddof=1) / math.sqrt(3)  # t(0.975, 2)
    assert np.allclose(low, curves.mean(axis=0) - half) and np.allclose(high, curves.mean(axis=0) + half)
