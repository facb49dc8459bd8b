"""The update-time model: how long an update's phases take on a device under given conditions.

One function, used by the simulation (with an update's drawn conditions) and by the configurator (with
median conditions, to expect an update's time before choosing its configuration). DESIGN.md, cost model:

    download_s = download_bytes · 8 / (downlink_mbps · 1e6) + link_latency_s
    compute_s  = flops / train_flops_per_s · straggler_factor
    upload_s   = upload_bytes · 8 / (uplink_mbps · 1e6) + link_latency_s
"""

from __future__ import annotations

from dataclasses import dataclass

from fleetsim.core.updates import Conditions
from fleetsim.spec.profiles import DeviceProfile

__all__ = ["PhaseTimes", "phase_times"]


@dataclass(frozen=True)
class PhaseTimes:
    """Planned durations of an update's phases, seconds. Link latency is added once per transfer."""

    download_transfer_s: float
    compute_s: float
    upload_transfer_s: float
    latency_s: float

    @property
    def download_s(self) -> float:
        return self.download_transfer_s + self.latency_s

    @property
    def upload_s(self) -> float:
        return self.upload_transfer_s + self.latency_s

    @property
    def phases(self) -> tuple[float, float, float]:
        """(download_s, compute_s, upload_s), in the order the device runs them."""
        return self.download_s, self.compute_s, self.upload_s

    @property
    def total_s(self) -> float:
        """Compute plus both transfers plus both latencies."""
        return self.compute_s + (self.download_transfer_s + self.upload_transfer_s) + 2 * self.latency_s


def phase_times(
    profile: DeviceProfile, conditions: Conditions, *, flops: float, download_bytes: int, upload_bytes: int
) -> PhaseTimes:
    """Phase durations of an update of ``flops`` (all local steps) moving these bytes, on ``profile``."""
    return PhaseTimes(
        download_transfer_s=download_bytes * 8 / (conditions.downlink_mbps * 1e6),
        compute_s=flops / profile.train_flops_per_s * conditions.straggler_factor,
        upload_transfer_s=upload_bytes * 8 / (conditions.uplink_mbps * 1e6),
        latency_s=profile.link_latency_s,
    )
