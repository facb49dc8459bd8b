"""Device profiles: distributions, their medians, the online share."""

from __future__ import annotations

import numpy as np
import pytest

from fleetsim.spec.profiles import Availability, Constant, LogNormal


def test_lognormal_median_is_its_median():
    dist = LogNormal(dist="lognormal", median=20.0, sigma=0.7)
    draws = np.array([dist.at(z) for z in np.random.default_rng(0).standard_normal(4001)])
    assert dist.median_value() == 20.0
    assert np.median(draws) == pytest.approx(20.0, rel=0.05)


def test_constant_is_constant():
    dist = Constant(dist="constant", value=3.5)
    assert dist.at(-1.3) == dist.at(2.0) == dist.median_value() == 3.5


def test_online_share_is_on_over_on_plus_off():
    assert Availability(mean_online_s=30.0, mean_offline_s=90.0).online_share == 0.25
