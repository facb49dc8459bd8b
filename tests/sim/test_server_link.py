"""The server's capped links: transfers in flight share a capacity max-min fairly, every update's course
follows its share exactly (hand-computed timelines with the stub trainer), a lost update frees its share."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_simulation import FAST, SLOW, TRANSFER_BYTES, simulate

from fleetsim.sim.server_link import fair_shares
from fleetsim.spec.profiles import Availability, LogNormal

MBIT = TRANSFER_BYTES * 8 / 1e6  # 3.2 Mbit each way


def test_two_updates_share_the_capped_server_links_equally_in_both_directions():
    # det_fast: 10 Mbit/s down, 5 up, 0.14 s of compute, no latency. Server: 10 down, 5 up, so two updates
    # get half each: download 3.2 / 5 = 0.64 s, compute to 0.78 s, upload 3.2 / 2.5 = 1.28 s, end 2.06 s.
    out = simulate({"det_fast": 2}, {"server": {"downlink_mbps": 10.0, "uplink_mbps": 5.0}, "stop": {"max_rounds": 1}})
    updates = out["updates"]
    assert (updates.outcome == "delivered").all()
    assert updates.download_s.tolist() == pytest.approx([MBIT / 5] * 2, rel=1e-12)
    assert updates.compute_s.tolist() == pytest.approx([FAST[1]] * 2, rel=1e-12)
    assert updates.upload_s.tolist() == pytest.approx([MBIT / 2.5] * 2, rel=1e-12)
    assert out["rounds"].end_s.tolist() == pytest.approx([0.64 + 0.14 + 1.28], rel=1e-12)
    assert updates.energy_j.tolist() == pytest.approx([1.0 * (0.64 + 1.28) + 10.0 * 0.14] * 2, rel=1e-12)
    uncapped = simulate({"det_fast": 2}, {"stop": {"max_rounds": 1}})["updates"]
    assert uncapped.download_s.tolist() == [FAST[0]] * 2, "no cap: each at its own link, as before"


def test_a_device_below_its_fair_share_keeps_its_own_speed_and_the_rest_goes_to_the_other():
    # Downlink cap 6: det_slow (own 2 Mbit/s) is under the level 3, so it keeps 2 and det_fast gets 4.
    out = simulate({"det_fast": 1, "det_slow": 1}, {"server": {"downlink_mbps": 6.0}, "stop": {"max_rounds": 1}})
    by = out["updates"].set_index("profile")
    assert by.loc["det_fast", "download_s"] == pytest.approx(MBIT / 4, rel=1e-12)
    assert by.loc["det_slow", "download_s"] == pytest.approx(SLOW[0], rel=1e-12)
    assert by.loc["det_fast", "upload_s"] == FAST[2], "uplink not capped"


def test_an_update_lost_mid_download_frees_its_share_at_that_moment():
    # Downlink cap 3: both at 1.5 Mbit/s until an outage takes det_slow at 1.0 s; det_fast has 1.7 Mbit left
    # and takes the whole 3 Mbit/s: download ends at 1.0 + 1.7 / 3 s.
    outage = {"windows_s": [[1.0, 100.0]], "tiers": ["test-slow"]}
    changes = {"server": {"downlink_mbps": 3.0}, "outages": [outage], "stop": {"max_rounds": 1}}
    by = simulate({"det_fast": 1, "det_slow": 1}, changes)["updates"].set_index("profile")
    assert by.loc["det_slow", "outcome"] == "offline" and by.loc["det_slow", "end_s"] == 1.0
    assert by.loc["det_slow", "failed_phase"] == "download"
    assert by.loc["det_slow", "bytes_down"] == 1.5e6 / 8 and by.loc["det_slow", "bytes_up"] == 0, "1 s at 1.5 Mbit/s"
    assert by.loc["det_fast", "bytes_down"] == TRANSFER_BYTES and by.loc["det_fast", "bytes_up"] == TRANSFER_BYTES
    download_s = 1.0 + (MBIT - 1.5) / 3.0
    assert by.loc["det_fast", "download_s"] == pytest.approx(download_s, rel=1e-12)
    assert by.loc["det_fast", "end_s"] == pytest.approx(download_s + FAST[1] + FAST[2], rel=1e-12)


def test_async_updates_share_the_capped_links_too():
    changes = {
        "rounds": {"mode": "async", "clients_per_round": 1, "concurrency": 2},
        "server": {"downlink_mbps": 10.0, "uplink_mbps": 5.0},
        "stop": {"max_rounds": 2},
    }
    updates = simulate({"det_fast": 2}, changes)["updates"]
    first = updates[updates.start_s == 0.0]
    assert len(first) == 2 and (first.outcome == "delivered").all()
    assert first.download_s.tolist() == pytest.approx([MBIT / 5] * 2, rel=1e-12)
    assert first.upload_s.tolist() == pytest.approx([MBIT / 2.5] * 2, rel=1e-12)


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_cap_that_never_binds_changes_nothing_even_with_losses_of_every_kind(mode: str):
    # Random links, stragglers, failures and churn: the link runs (and re-plans) every update, yet every
    # outcome, phase and moment is the uncapped run's.
    noisy = {
        "downlink_mbps": LogNormal(dist="lognormal", median=2.0, sigma=0.8),
        "uplink_mbps": LogNormal(dist="lognormal", median=1.0, sigma=0.8),
        "straggler_sigma": 0.5,
        "failure_prob_per_update": 0.3,
        "availability": Availability(mean_online_s=8.0, mean_offline_s=4.0),
    }
    changes = {
        "rounds": {"mode": mode, "clients_per_round": 3, "concurrency": 6, "deadline_s": 9.0},
        "stop": {"max_rounds": 12},
        "training": {"mode": "none"},
    }
    fleet, profiles = {"det_fast": 6, "det_slow": 6}, {"det_fast": noisy, "det_slow": noisy}
    plain = simulate(fleet, changes, profile_changes=profiles)["updates"]
    capped = simulate(fleet, {**changes, "server": {"downlink_mbps": 1e9}}, profile_changes=profiles)["updates"]
    assert set(plain.outcome) >= {"delivered", "failure", "offline"}, "the fleet loses updates of each kind"
    columns = ["round", "device_id", "outcome", "failed_phase", "offline_cause"]
    assert capped[columns].equals(plain[columns])
    for column in ["start_s", "end_s", "download_s", "compute_s", "upload_s", "energy_j"]:
        assert capped[column].tolist() == pytest.approx(plain[column].tolist(), rel=1e-9, abs=1e-9), column


@given(
    own=st.lists(st.floats(0.01, 1e4, allow_nan=False), min_size=1, max_size=20),
    capacity=st.floats(0.01, 1e5, allow_nan=False),
)
def test_fair_shares_are_max_min_fair(own: list[float], capacity: float):
    rates = fair_shares(own, capacity)
    assert all(0 < r <= o * (1 + 1e-12) for r, o in zip(rates, own, strict=True))
    assert sum(rates) <= capacity * (1 + 1e-9)
    if sum(own) > capacity:  # saturated: the capacity is used, and every flow held back gets the top rate
        assert sum(rates) == pytest.approx(capacity, rel=1e-9)
        top = max(rates)
        assert all(r == pytest.approx(top, rel=1e-9) for r, o in zip(rates, own, strict=True) if r < o)
    else:
        assert rates == own
