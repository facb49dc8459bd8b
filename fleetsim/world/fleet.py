"""The fleet: devices, their availability state, and the per-update conditions they draw (no SimPy).

Availability is advanced lazily (:mod:`fleetsim.world.availability`): only when a device's state is asked
for past its next change. Every change is reported to ``on_change`` (the simulation logs it).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from fleetsim.core.rng import Streams
from fleetsim.core.state import StateDict
from fleetsim.core.updates import Conditions
from fleetsim.spec.profiles import DeviceProfile, Diurnal
from fleetsim.world.availability import DiurnalDraws, first_state, next_change_s
from fleetsim.world.conditions import draw_conditions

__all__ = ["Device", "Fleet"]


@dataclass
class Device:
    """One device: its profile and its availability state (explicit, so a run can be resumed)."""

    id: int
    profile_id: str
    profile: DeviceProfile
    slot: int = 0  # index within its fleet group (time zone, trace device)
    group: int = 0  # index of its fleet group
    period: int = -1  # index of the current online/offline period (-1: not started)
    online: bool = True
    change_at_s: float = 0.0  # end of the current period (inf: never changes)

    @property
    def tier(self) -> str:
        return self.profile.tier


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
        self.draws: list[DiurnalDraws | None] = []
        for group, (profile_id, profile, count) in enumerate(composition):
            diurnal = isinstance(profile.availability, Diurnal)
            self.draws.append(DiurnalDraws(streams, group, count) if diurnal else None)
            for slot in range(count):
                self.devices.append(Device(len(self.devices), profile_id, profile, slot, group))
        for device in self.devices:
            self._start(device)

    def __len__(self) -> int:
        return len(self.devices)

    def state_dict(self) -> StateDict:
        """Every device's availability state, as arrays in device order."""
        return {
            "period": np.array([d.period for d in self.devices], dtype=np.int64),
            "online": np.array([d.online for d in self.devices], dtype=bool),
            "change_at_s": np.array([d.change_at_s for d in self.devices], dtype=float),
        }

    def load_state_dict(self, state: StateDict) -> None:
        for device, period, online, change in zip(
            self.devices, state["period"], state["online"], state["change_at_s"], strict=True
        ):
            device.period, device.online, device.change_at_s = int(period), bool(online), float(change)

    def _start(self, device: Device) -> None:
        avail = device.profile.availability
        if avail is None:
            device.period, device.online, device.change_at_s = 0, True, math.inf
            return
        draws = self.draws[device.group]
        device.period, device.online, device.change_at_s = first_state(
            avail, device.id, device.slot, self.streams, draws
        )

    def _advance(self, device: Device, now_s: float) -> None:
        avail = device.profile.availability
        while avail is not None and device.change_at_s <= now_s:
            device.period += 1
            device.online = not device.online
            if self.on_change is not None:
                self.on_change(device.change_at_s, device.id, device.online)
            device.change_at_s = next_change_s(
                avail,
                device.id,
                device.slot,
                device.period,
                device.online,
                device.change_at_s,
                self.streams,
                self.draws[device.group],
            )

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

    def conditions(self, device: Device, round_idx: int, serial: int | None = None) -> Conditions:
        """Draw link speeds, straggler factor and failure point of ``device``'s update in ``round_idx`` (and
        ``serial``, in asynchronous rounds)."""
        ids = (round_idx, device.id) if serial is None else (round_idx, device.id, serial)
        return draw_conditions(device.profile, self.streams.generator("update-conditions", *ids))
