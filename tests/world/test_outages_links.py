"""Correlated outages (scheduled and random) and link types assigned by share."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import plain_profile

from fleetsim.core.rng import Streams
from fleetsim.spec.profiles import Constant, DeviceProfile, LinkType
from fleetsim.spec.scenario import OutageSpec
from fleetsim.world.fleet import Fleet


def _profile(tier: str = "t", links: dict[str, LinkType] | None = None) -> DeviceProfile:
    return plain_profile(tier=tier, **({"links": links} if links else {}))


def test_a_scheduled_outage_takes_exactly_its_tier_offline_for_exactly_its_window():
    outage = OutageSpec(windows_s=[(100.0, 250.0), (250.0, 300.0)], tiers=["a"])
    fleet = Fleet([("pa", _profile("a"), 2), ("pb", _profile("b"), 2)], Streams(0), outages=[outage])
    a, b = fleet.devices[0], fleet.devices[2]
    assert fleet.online_until_s(a, 0.0) == 100.0, "an update in progress is cut when the outage starts"
    assert np.isinf(fleet.online_until_s(b, 0.0))
    assert fleet.is_online(a, 99.9) and not fleet.is_online(a, 100.0)
    assert not fleet.is_online(a, 299.9), "back-to-back windows join"
    assert fleet.is_online(a, 300.0) and fleet.is_online(b, 150.0)
    assert [d.id for d in fleet.available(200.0)] == [2, 3]


def test_random_outages_hit_their_share_together_and_reproduce():
    outage = OutageSpec(mean_interval_s=3600.0, mean_duration_s=600.0, fraction=0.5)
    fleet = Fleet([("p", _profile(), 2000)], Streams(1), outages=[outage])
    again = Fleet([("p", _profile(), 2000)], Streams(1), outages=[outage])
    first = fleet.outages._outages(0, 86_400.0)
    starts = [o.start_s for o in first]
    assert starts == [o.start_s for o in again.outages._outages(0, 86_400.0)]
    assert 10 <= len(starts) <= 45  # ~24 outages a day
    hit = np.mean([o.hit.mean() for o in first])
    assert hit == pytest.approx(0.5, abs=0.02)
    o = first[0]
    down = [d for d in fleet.devices if not fleet.is_online(d, (o.start_s + o.end_s) / 2)]
    assert len(down) >= int(o.hit.sum()), "every device the outage hits is offline at once"


def test_devices_get_link_types_by_share_and_draw_their_types_speeds():
    links = {
        "wifi": LinkType(
            share=0.6,
            downlink_mbps=Constant(dist="constant", value=100.0),
            uplink_mbps=Constant(dist="constant", value=50.0),
        ),
        "4g": LinkType(
            share=0.4,
            downlink_mbps=Constant(dist="constant", value=20.0),
            uplink_mbps=Constant(dist="constant", value=5.0),
        ),
    }
    fleet = Fleet([("p", _profile(links=links), 1000)], Streams(2))
    kinds = [d.link for d in fleet.devices]
    assert kinds.count("wifi") / 1000 == pytest.approx(0.6, abs=0.05)
    for d in fleet.devices[:20]:
        cond = fleet.conditions(d, 0)
        assert (cond.downlink_mbps, cond.uplink_mbps) == ((100.0, 50.0) if d.link == "wifi" else (20.0, 5.0))
    assert kinds == [d.link for d in Fleet([("p", _profile(links=links), 1000)], Streams(2)).devices]


def test_link_shares_must_add_up_to_one():
    links = {
        "wifi": LinkType(
            share=0.5,
            downlink_mbps=Constant(dist="constant", value=1.0),
            uplink_mbps=Constant(dist="constant", value=1.0),
        )
    }
    with pytest.raises(ValueError, match="shares that add up to 1"):
        _profile(links=links)
