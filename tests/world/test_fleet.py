"""Availability: lazily sampled, reproducible, at the stationary online share; conditions drawn per update."""

from __future__ import annotations

import math

import numpy as np

from fleetsim.core.rng import Streams
from fleetsim.spec.profiles import FIGURE_FIELDS, Availability, Constant, DeviceProfile, LogNormal
from fleetsim.world.conditions import median_conditions
from fleetsim.world.fleet import Fleet


def _profile(avail: Availability | None) -> DeviceProfile:
    return DeviceProfile(
        name="p",
        tier="t",
        usable_memory_gib=1,
        train_flops_per_s=1e9,
        downlink_mbps=Constant(dist="constant", value=1.0),
        uplink_mbps=Constant(dist="constant", value=1.0),
        availability=avail,
        failure_prob_per_update=0.0,
        straggler_sigma=0.0,
        train_power_w=1,
        radio_power_w=1,
        sources={k: "test" for k in FIGURE_FIELDS},
    )


def test_availability_matches_the_stationary_online_share():
    fleet = Fleet([("p", _profile(Availability(mean_online_s=30.0, mean_offline_s=70.0)), 400)], Streams(0))
    shares = [len(fleet.available(t)) / 400 for t in np.arange(0.0, 5000.0, 50.0)]
    assert abs(float(np.mean(shares)) - 0.3) < 0.03


def test_availability_is_lazy_and_reproducible():
    changes: list[tuple[float, int, bool]] = []
    prof = _profile(Availability(mean_online_s=10.0, mean_offline_s=10.0))
    fleet = Fleet([("p", prof, 3)], Streams(4), on_change=lambda t, d, o: changes.append((t, d, o)))
    assert changes == [], "nothing is drawn before it is asked for"
    first = [fleet.is_online(d, 100.0) for d in fleet.devices]
    again = Fleet([("p", prof, 3)], Streams(4))
    assert [again.is_online(d, 100.0) for d in again.devices] == first
    assert all(t <= 100.0 for t, _, _ in changes)


def test_always_online_device_never_goes_offline():
    fleet = Fleet([("p", _profile(None), 2)], Streams(0))
    assert all(fleet.is_online(d, 1e9) for d in fleet.devices)
    assert math.isinf(fleet.online_until_s(fleet.devices[0], 5.0))


def test_conditions_are_drawn_per_round_and_device_and_median_conditions_are_typical():
    prof = _profile(None).model_copy(
        update={
            "downlink_mbps": LogNormal(dist="lognormal", median=40.0, sigma=0.5),
            "straggler_sigma": 0.6,
            "failure_prob_per_update": 0.5,
        }
    )
    fleet = Fleet([("p", prof, 2)], Streams(3))
    a, b = fleet.devices
    assert fleet.conditions(a, 4) == fleet.conditions(a, 4)
    assert fleet.conditions(a, 4) != fleet.conditions(b, 4) != fleet.conditions(b, 5)
    typical = median_conditions(prof)
    assert (typical.downlink_mbps, typical.uplink_mbps, typical.straggler_factor) == (40.0, 1.0, 1.0)
    assert typical.failure_fraction is None
