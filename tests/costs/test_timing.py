"""The one update-time model: hand-computed phases and total."""

from __future__ import annotations

from conftest import FIXTURE_PROFILES

from fleetsim.core.updates import Conditions
from fleetsim.costs.timing import phase_times
from fleetsim.spec.profiles import load_profile


def test_phases_are_bytes_over_bandwidth_plus_latency_and_flops_over_throughput():
    slow = load_profile(FIXTURE_PROFILES / "det_slow.yaml")  # 1e10 FLOP/s, 0.5 s latency
    times = phase_times(slow, Conditions(4.0, 2.0, 1.5, None), flops=3e10, download_bytes=10**6, upload_bytes=5 * 10**5)
    assert times.download_s == 8e6 / 4e6 + 0.5
    assert times.compute_s == 3e10 / 1e10 * 1.5
    assert times.upload_s == 4e6 / 2e6 + 0.5
    assert times.phases == (2.5, 4.5, 2.5)
    assert times.total_s == 4.5 + (2.0 + 2.0) + 2 * 0.5
