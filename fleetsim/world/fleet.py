"""The fleet: devices, their availability state, and the per-update conditions they draw (no SimPy).

Availability is advanced lazily (:mod:`fleetsim.world.availability`): only when a device's state is asked
for past its next change. Every change is reported to ``on_change`` (the simulation logs it).

A device takes part when it is online by its availability model, no correlated outage covers it
(:mod:`fleetsim.world.outages`) and its battery allows (:mod:`fleetsim.world.battery`: charging, or above its
leave threshold). Devices whose profile has link types are each assigned one, by share, from the stream
("link-type", device); their transfers draw from that type's distributions.
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
from fleetsim.spec.scenario import OutageSpec
from fleetsim.world.availability import DiurnalDraws, first_state, next_change_s
from fleetsim.world.battery import WH_PER_WS, Charging, Load, drain, level_wh
from fleetsim.world.conditions import SerialDraws, conditions_from, draw_conditions
from fleetsim.world.outages import Outages

__all__ = ["Device", "Fleet"]


@dataclass(slots=True)
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
    link: str | None = None  # its link type, when its profile has several
    battery_wh: float = math.nan  # battery level at battery_at_s (nan: no battery)
    battery_at_s: float = 0.0
    battery_ok: bool = True  # whether its battery lets it take part ...
    battery_ok_until_s: float = -math.inf  # ... until then (a cache; -inf: to be worked out)

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
        outages: list[OutageSpec] | None = None,
    ):
        """``on_change(time_s, device_id, online)`` is called for each availability change (for the log)."""
        self.streams = streams
        self.on_change = on_change
        self.devices: list[Device] = []
        self.draws: list[DiurnalDraws | None] = []
        self.charging_draws: list[DiurnalDraws | None] = []
        self.charging: dict[int, Charging] = {}  # per device with a battery, made when first asked about
        self.serial_draws = SerialDraws(streams)
        for group, (profile_id, profile, count) in enumerate(composition):
            diurnal = isinstance(profile.availability, Diurnal)
            self.draws.append(DiurnalDraws(streams, group, count) if diurnal else None)
            battery = profile.battery is not None
            self.charging_draws.append(DiurnalDraws(streams, group, count, "battery-charging") if battery else None)
            for slot in range(count):
                self.devices.append(Device(len(self.devices), profile_id, profile, slot, group))
        for device in self.devices:
            self._start(device)
        specs = outages or []
        self.outages = Outages(specs, [self._eligible(spec) for spec in specs], streams)
        self._plain = not self.outages and all(d.profile.battery is None for d in self.devices)

    def _eligible(self, spec: OutageSpec) -> np.ndarray:
        return np.array(
            [
                (spec.tiers is None or d.tier in spec.tiers)
                and (spec.profiles is None or d.profile_id in spec.profiles)
                for d in self.devices
            ],
            dtype=bool,
        )

    def __len__(self) -> int:
        return len(self.devices)

    def state_dict(self) -> StateDict:
        """Every device's availability state, as arrays in device order."""
        return {
            "period": np.array([d.period for d in self.devices], dtype=np.int64),
            "online": np.array([d.online for d in self.devices], dtype=bool),
            "change_at_s": np.array([d.change_at_s for d in self.devices], dtype=float),
            "battery_wh": np.array([d.battery_wh for d in self.devices], dtype=float),
            "battery_at_s": np.array([d.battery_at_s for d in self.devices], dtype=float),
        }

    def load_state_dict(self, state: StateDict) -> None:
        for i, device in enumerate(self.devices):
            device.period, device.online = int(state["period"][i]), bool(state["online"][i])
            device.change_at_s = float(state["change_at_s"][i])
            device.battery_wh, device.battery_at_s = float(state["battery_wh"][i]), float(state["battery_at_s"][i])
            device.battery_ok_until_s = -math.inf

    def _start(self, device: Device) -> None:
        links = device.profile.links
        if links is not None:
            names = sorted(links)
            shares = np.array([links[n].share for n in names])
            u = self.streams.generator("link-type", device.id).random()
            device.link = names[min(int(np.searchsorted(np.cumsum(shares), u, side="right")), len(names) - 1)]
        battery = device.profile.battery
        if battery is not None:
            u = self.streams.generator("battery", device.id).random()
            device.battery_wh = battery.capacity_wh * (
                battery.start_min_frac + u * (battery.start_max_frac - battery.start_min_frac)
            )
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

    @property
    def plain(self) -> bool:
        """Whether only availability decides who takes part (no outages, no batteries): then a device whose
        period has not ended is online exactly when its ``online`` flag says so."""
        return self._plain

    def is_online(self, device: Device, now_s: float) -> bool:
        """Whether ``device`` can take part at ``now_s``: online, outside outages, its battery allowing."""
        if device.change_at_s <= now_s:
            self._advance(device, now_s)
        if not device.online:
            return False
        if self.outages and self.outages.down_until_s(device.id, now_s) > now_s:
            return False
        if device.profile.battery is None:
            return True
        if not device.battery_at_s <= now_s < device.battery_ok_until_s:
            device.battery_ok, device.battery_ok_until_s = self._battery_status(device, now_s)
        return device.battery_ok

    def _battery_status(self, device: Device, now_s: float) -> tuple[bool, float]:
        """Whether an idle ``device``'s battery lets it take part at ``now_s``, and until when that holds at
        least: on the charger, until the window ends; off it, until the level reaches the threshold or the
        next window opens."""
        battery = device.profile.battery
        assert battery is not None
        charging = self._charging(device)
        on_charger, change_s = charging.at(now_s)
        if on_charger:
            return True, change_s
        level = level_wh(battery, device.battery_wh, device.battery_at_s, now_s, charging.at)
        above_wh = level - battery.leave_below_frac * battery.capacity_wh
        if above_wh <= 0:
            return False, change_s
        if battery.idle_drain_w > 0:
            change_s = min(change_s, now_s + above_wh / (battery.idle_drain_w * WH_PER_WS))
        return True, change_s

    def online_until_s(self, device: Device, now_s: float) -> float:
        """When an online device next goes offline by availability or outage (``inf`` if never)."""
        self._advance(device, now_s)
        if not device.online:
            return now_s
        if self.outages:
            return min(device.change_at_s, self.outages.next_start_s(device.id, now_s))
        return device.change_at_s

    def leaves_at_s(self, device: Device, start_s: float, load: Load) -> tuple[float, str]:
        """When ``device``, drawing ``load`` ((duration_s, power_w) pieces) from ``start_s``, leaves, and why:
        its availability ends (``availability``), an outage takes it (``outage``) or its battery falls to its
        threshold (``battery``); ``inf`` if it stays."""
        self._advance(device, start_s)
        leaves = [(device.change_at_s if device.online else start_s, "availability")]
        if self.outages:
            leaves.append((self.outages.next_start_s(device.id, start_s), "outage"))
        battery = device.profile.battery
        if battery is not None:
            charging = self._charging(device)
            level = level_wh(battery, device.battery_wh, device.battery_at_s, start_s, charging.at)
            leaves.append((drain(battery, level, start_s, load, charging.at).leave_s, "battery"))
        return min(leaves, key=lambda leave: leave[0])

    def spend(self, device: Device, start_s: float, load: Load) -> None:
        """Draw ``load`` from ``device``'s battery from ``start_s`` (an update's phases as they ran)."""
        battery = device.profile.battery
        if battery is None:
            return
        charging = self._charging(device)
        level = level_wh(battery, device.battery_wh, device.battery_at_s, start_s, charging.at)
        device.battery_wh = drain(battery, level, start_s, load, charging.at).level_wh
        device.battery_at_s = start_s + sum(duration for duration, _ in load)
        device.battery_ok_until_s = -math.inf

    def battery_level_wh(self, device: Device, now_s: float) -> float:
        """``device``'s battery level at ``now_s`` if idle since its last update (nan: no battery)."""
        battery = device.profile.battery
        if battery is None:
            return math.nan
        return level_wh(battery, device.battery_wh, device.battery_at_s, now_s, self._charging(device).at)

    def _charging(self, device: Device) -> Charging:
        if device.id not in self.charging:
            draws = self.charging_draws[device.group]
            assert device.profile.battery is not None and draws is not None
            self.charging[device.id] = Charging(device.profile.battery, device.slot, draws)
        return self.charging[device.id]

    def available(self, now_s: float) -> list[Device]:
        """Devices online at ``now_s``, in id order."""
        return [d for d in self.devices if self.is_online(d, now_s)]

    def conditions(self, device: Device, round_idx: int, serial: int | None = None) -> Conditions:
        """Draw link speeds, straggler factor and failure point of ``device``'s update in ``round_idx`` (from
        the stream of (round, device)), or of update ``serial`` in asynchronous rounds (from its row of
        :class:`~fleetsim.world.conditions.SerialDraws`)."""
        if serial is None:
            rng = self.streams.generator("update-conditions", round_idx, device.id)
            return draw_conditions(device.profile, rng, device.link)
        normals, uniforms = self.serial_draws.row(serial)
        return conditions_from(device.profile, normals, uniforms, device.link)
