"""Battery: drain by work and idle use, charging windows, leave and return times exact on a tiny fleet."""

from __future__ import annotations

import math

import pytest
from conftest import plain_profile

from fleetsim.core.rng import Streams
from fleetsim.spec.profiles import Battery, DeviceProfile, Diurnal
from fleetsim.world.fleet import Fleet

H = 3600.0
# Charging every night 22:00-06:00 UTC exactly (no spread): windows [-2 h, 6 h), [22 h, 30 h), ...
NIGHTS = Diurnal(kind="diurnal", start_h=22.0, start_sd_h=0.0, hours=8.0, hours_sd=0.0)


def _profile(battery: Battery) -> DeviceProfile:
    return plain_profile(battery=battery, train_power_w=10, radio_power_w=2)


def _fleet(**battery: float) -> Fleet:
    spec = {"capacity_wh": 10.0, "leave_below_frac": 0.2, "idle_drain_w": 1.0, "charge_w": 5.0}
    spec |= {"start_min_frac": 0.5, "start_max_frac": 0.5} | battery
    return Fleet([("p", _profile(Battery(charging=NIGHTS, **spec)), 1)], Streams(0))


def test_an_idle_device_charges_drains_leaves_at_its_threshold_and_returns_when_charging_starts():
    fleet = _fleet()
    d = fleet.devices[0]
    # 5 Wh at 0 h, on the charger: +5 − 1 W → full (10 Wh) at 1.25 h, still full at 6 h.
    assert fleet.battery_level_wh(d, 1.25 * H) == pytest.approx(10.0)
    assert fleet.battery_level_wh(d, 6 * H) == pytest.approx(10.0)
    # off the charger, −1 W: 2 Wh (20 %) after 8 h, at 14 h: it leaves, and is back at 22 h when charging starts.
    assert fleet.battery_level_wh(d, 14 * H) == pytest.approx(2.0)
    assert fleet.is_online(d, 14 * H - 1.0)
    assert not fleet.is_online(d, 14 * H + 1.0)
    assert not fleet.is_online(d, 22 * H - 1.0)
    assert fleet.is_online(d, 22 * H)
    assert fleet.battery_level_wh(d, 21 * H) == 0.0  # 2 Wh − 1 W · 7 h, floored at 0
    assert fleet.battery_level_wh(d, 23 * H) == pytest.approx(4.0)  # + (5 − 1) W · 1 h on the charger


def test_an_update_that_drains_the_battery_leaves_at_the_exact_moment_it_reaches_the_threshold():
    fleet = _fleet()
    d = fleet.devices[0]
    # From 6 h at 10 Wh: download 100 s at 2 W (−0.0556 Wh), then compute at 10 W until 2 Wh: 2,860 s more.
    load = [(100.0, 2.0), (7200.0, 10.0), (100.0, 2.0)]
    assert fleet.leaves_at_s(d, 6 * H, load) == (pytest.approx(6 * H + 100.0 + 2860.0), "battery")
    fleet.spend(d, 6 * H, [(100.0, 2.0), (2860.0, 10.0), (0.0, 2.0)])  # what ran before it left
    assert d.battery_at_s == 6 * H + 2960.0
    assert fleet.battery_level_wh(d, d.battery_at_s) == pytest.approx(2.0)
    assert not fleet.is_online(d, d.battery_at_s + 1.0)


def test_charging_keeps_a_working_device_in_and_a_low_one_may_start_while_charging():
    fleet = _fleet(start_min_frac=0.1, start_max_frac=0.1)  # 1 Wh, below the 2 Wh threshold
    d = fleet.devices[0]
    assert fleet.is_online(d, 0.0), "on the charger a low battery does not keep it out"
    # training at 10 W on a 5 W charger loses 5 W net but never leaves while charging; at 6 h the window
    # ends with the level below the threshold: it leaves then.
    assert fleet.leaves_at_s(d, 0.0, [(8 * H, 10.0)]) == (pytest.approx(6 * H), "battery")
    assert math.isinf(fleet.leaves_at_s(d, 0.0, [(H, 4.0)])[0])


def test_battery_state_resumes_exactly():
    fleet = _fleet()
    d = fleet.devices[0]
    fleet.spend(d, 6 * H, [(100.0, 2.0), (1000.0, 10.0), (100.0, 2.0)])
    again = _fleet()
    again.load_state_dict(fleet.state_dict())
    assert again.battery_level_wh(again.devices[0], 10 * H) == fleet.battery_level_wh(d, 10 * H)
