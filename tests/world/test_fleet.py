"""Availability: lazily sampled, reproducible, at the stationary online share; conditions drawn per update."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import plain_profile

from fleetsim.core.rng import Streams
from fleetsim.spec.profiles import Availability, DeviceProfile, Diurnal, LogNormal, Trace
from fleetsim.world.conditions import median_conditions
from fleetsim.world.fleet import Fleet


def _profile(avail: Availability | None) -> DeviceProfile:
    return plain_profile(availability=avail)


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


def _trace_profile(tmp_path, rows: str) -> DeviceProfile:
    file = tmp_path / "trace.csv"
    file.write_text("device,online_start_s,online_end_s\n" + rows)
    return _profile(None).model_copy(update={"availability": Trace(kind="trace", file=str(file))})


def test_trace_replay_reproduces_a_hand_made_trace_exactly(tmp_path):
    # b's two overlapping intervals merge; a third group device cycles back to trace device a.
    prof = _trace_profile(tmp_path, "b,100,200\na,0,50\na,70,80\nb,150,260\n")
    changes: list[tuple[float, int, bool]] = []
    fleet = Fleet([("p", prof, 3)], Streams(0), on_change=lambda t, d, o: changes.append((t, d, o)))
    a, b, a_again = fleet.devices
    assert [fleet.is_online(a, t) for t in (0.0, 49.9, 50.0, 69.9, 70.0, 79.9, 80.0, 1e9)] == [
        True, True, False, False, True, True, False, False,
    ]  # fmt: skip
    assert not fleet.is_online(b, 99.9) and fleet.online_until_s(b, 100.0) == 260.0  # time only moves forward
    assert fleet.is_online(a_again, 75.0) and fleet.online_until_s(a_again, 75.0) == 80.0
    assert sorted(c for c in changes if c[1] == 0) == [(50.0, 0, False), (70.0, 0, True), (80.0, 0, False)]
    assert not fleet.is_online(b, 1e9) and math.isinf(b.change_at_s)


def test_a_broken_trace_is_a_one_line_input_error(tmp_path):
    from fleetsim.core.errors import InputError
    from fleetsim.world.traces import read_trace

    bad = tmp_path / "bad.csv"
    bad.write_text("device,online_start_s,online_end_s\nx,10,5\n")
    with pytest.raises(InputError, match=r"row 2\.online_end_s.*> online_start_s"):
        read_trace(str(bad))
    bad.write_text("device,start\nx,10\n")
    read_trace.cache_clear()
    with pytest.raises(InputError, match="columns device, online_start_s, online_end_s"):
        read_trace(str(bad))


def test_diurnal_windows_open_in_the_local_night_in_every_time_zone():
    avail = Diurnal(kind="diurnal", start_h=22.0, start_sd_h=1.0, hours=8.0, hours_sd=1.0, utc_offsets_h=[0.0, 6.0])
    profile = _profile(None).model_copy(update={"availability": avail})

    def share(local_h: float, offset_h: float) -> float:  # on days 1 and 2, each from a fresh fleet
        fleet = Fleet([("p", profile, 400)], Streams(2))
        zone = fleet.devices[0::2] if offset_h == 0.0 else fleet.devices[1::2]
        times = [((local_h - offset_h) % 24 + 24 * k) * 3600 for k in (1, 2)]
        return float(np.mean([fleet.is_online(d, t) for t in times for d in zone]))

    for offset in (0.0, 6.0):
        assert share(2.0, offset) > 0.9, "almost everyone is online at 2 am local time"
        assert share(14.0, offset) == 0.0, "nobody at 2 pm (that needs a window of 13+ h, 5 sd above the mean)"
    fleet = Fleet([("p", profile, 400)], Streams(2))
    overall = np.mean([len(fleet.available(h * 3600)) / 400 for h in np.arange(0.0, 72.0, 0.5)])
    assert abs(overall - 8.0 / 24) < 0.03


def test_diurnal_and_trace_state_resumes_exactly(tmp_path):
    avail = Diurnal(kind="diurnal")
    prof = _profile(None).model_copy(update={"availability": avail})
    fleet = Fleet([("p", prof, 5)], Streams(1))
    fleet.available(40_000.0)
    again = Fleet([("p", prof, 5)], Streams(1))
    again.load_state_dict(fleet.state_dict())
    assert [again.online_until_s(d, 90_000.0) for d in again.devices] == [
        Fleet([("p", prof, 5)], Streams(1)).online_until_s(d, 90_000.0)
        for d in Fleet([("p", prof, 5)], Streams(1)).devices
    ]
