"""The fleet: devices, their lazily sampled availability, and the per-update conditions they draw.

Availability is an alternating renewal process with exponential online/offline periods (a common
fit to device traces; FedScale and FLASH replay such on/off intervals). Periods are drawn lazily, only
when a device's state is asked for past its next change, from a stream keyed by (device, period index),
so 100k devices cost no processes and the state per device is three numbers.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from fleetsim.core.rng import Streams
from fleetsim.spec.profiles import DeviceProfile

__all__ = ["Conditions", "Device", "Fleet"]


@dataclass
class Device:
    """One device: its profile and its availability state (explicit, so a run can be resumed)."""

    id: int
    profile_id: str
    profile: DeviceProfile
    period: int = -1  # index of the current online/offline period (-1: not started)
    online: bool = True
    change_at_s: float = 0.0  # end of the current period (inf: never changes)

    @property
    def tier(self) -> str:
        return self.profile.tier


@dataclass(frozen=True)
class Conditions:
    """Random conditions of one update on one device, drawn before it starts."""

    downlink_mbps: float
    uplink_mbps: float
    straggler_factor: float  # multiplies compute time; lognormal with median 1
    failure_fraction: float | None  # the update fails after this fraction of its planned time, or never


class Fleet:
    """All devices of a run, built from the scenario's fleet composition in order."""

    def __init__(
        self,
        composition: list[tuple[str, DeviceProfile, int]],
        streams: Streams,
        on_change: Callable[[float, int, bool], None] | None = None,
    ):
        """``on_change(time_s, device_id, online)`` is called for each availability change (for the log)."""
        self.streams = streams
        self.on_change = on_change
        self.devices: list[Device] = []
        for profile_id, profile, count in composition:
            for _ in range(count):
                self.devices.append(Device(len(self.devices), profile_id, profile))
        for device in self.devices:
            self._start(device)

    def __len__(self) -> int:
        return len(self.devices)

    def _start(self, device: Device) -> None:
        avail = device.profile.availability
        device.period = 0
        if avail is None:
            device.online, device.change_at_s = True, math.inf
            return
        rng = self.streams.generator("availability", device.id, 0)
        # Stationary start: online with probability on/(on+off); the residual of an exponential period
        # is again exponential with the same mean (memorylessness).
        device.online = bool(rng.random() < avail.mean_online_s / (avail.mean_online_s + avail.mean_offline_s))
        mean = avail.mean_online_s if device.online else avail.mean_offline_s
        device.change_at_s = float(rng.exponential(mean))

    def _advance(self, device: Device, now_s: float) -> None:
        avail = device.profile.availability
        while avail is not None and device.change_at_s <= now_s:
            device.period += 1
            device.online = not device.online
            if self.on_change is not None:
                self.on_change(device.change_at_s, device.id, device.online)
            mean = avail.mean_online_s if device.online else avail.mean_offline_s
            rng = self.streams.generator("availability", device.id, device.period)
            device.change_at_s += float(rng.exponential(mean))

    def is_online(self, device: Device, now_s: float) -> bool:
        self._advance(device, now_s)
        return device.online

    def online_until_s(self, device: Device, now_s: float) -> float:
        """When an online device next goes offline (``inf`` if never)."""
        self._advance(device, now_s)
        return device.change_at_s if device.online else now_s

    def available(self, now_s: float) -> list[Device]:
        """Devices online at ``now_s``, in id order."""
        return [d for d in self.devices if self.is_online(d, now_s)]

    def conditions(self, device: Device, round_idx: int) -> Conditions:
        """Draw link speeds, straggler factor and failure point of ``device``'s update in ``round_idx``."""
        rng = self.streams.generator("update-conditions", round_idx, device.id)
        p = device.profile
        down = p.downlink_mbps.sample(rng)
        up = p.uplink_mbps.sample(rng)
        straggler = float(math.exp(p.straggler_sigma * rng.standard_normal()))
        fails = rng.random() < p.failure_prob_per_update
        fraction = float(rng.random())
        return Conditions(down, up, straggler, fraction if fails else None)
