"""Battery level over time: drained by work and idle use, refilled in charging windows (no SimPy).

The level is piecewise linear in time (:class:`~fleetsim.spec.profiles.Battery`). Between two moments the
device draws a sequence of loads — ``(duration_s, power_w)`` pieces run back to back (an update's
download, compute and upload; ``idle_drain_w`` when idle) — and, where a piece overlaps a charging window,
gains ``charge_w``:

    inside a charging window:  dL/dt = (charge_w − power_w) / 3600   Wh/s, capped at capacity_wh
    outside:                   dL/dt = −power_w / 3600               Wh/s, floored at 0

The device leaves when its level reaches ``leave_below_frac · capacity_wh`` outside a charging window and
returns when the next window opens. Charging windows are the device's diurnal windows of
``battery.charging``, drawn from their own stream (:class:`~fleetsim.world.availability.DiurnalDraws`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from fleetsim.spec.profiles import Battery
from fleetsim.world.availability import DAY_S, DiurnalDraws, diurnal_window_s

__all__ = ["WH_PER_WS", "Charging", "Drain", "Load", "drain", "level_wh"]

Load = Sequence[tuple[float, float]]  # (duration_s, power_w) pieces, back to back
ChargingAt = Callable[[float], tuple[bool, float]]  # t -> (on the charger at t, when that next changes)
WH_PER_WS = 1 / 3600  # watt-seconds (joules) to watt-hours


class Charging:
    """One device's charging windows: ``at(t)`` is (on the charger at ``t``, when that next changes).

    The windows of five local days around the last day asked about are kept (queries move forward)."""

    def __init__(self, battery: Battery, slot: int, draws: DiurnalDraws):
        self.battery, self.slot, self.draws = battery, slot, draws
        self._day = -(2**31)
        self._windows: list[tuple[float, float]] = []

    def at(self, t_s: float) -> tuple[bool, float]:
        day = math.floor(t_s / DAY_S)
        if day != self._day:
            self._day = day
            self._windows = sorted(
                diurnal_window_s(self.battery.charging, self.slot, d, self.draws)
                for d in range(max(day - 2, -1), day + 3)
            )
        for start_s, end_s in self._windows:
            if start_s <= t_s < end_s:
                return True, end_s
            if start_s > t_s:
                return False, start_s
        raise AssertionError("a diurnal window opens within two days")  # windows are at most 17 h apart + 30 h


@dataclass(frozen=True)
class Drain:
    """What a load did to the battery: when the device left (``inf``: it did not) and the level after."""

    leave_s: float
    level_wh: float


def drain(battery: Battery, level: float, start_s: float, load: Load, charging: ChargingAt) -> Drain:
    """Run ``load`` from ``start_s`` with the battery at ``level`` Wh; the first moment the level reaches the
    leave threshold outside a charging window, and the level at the end of the load."""
    threshold = battery.leave_below_frac * battery.capacity_wh
    t, leave = start_s, math.inf
    for duration_s, power_w in load:
        end = t + duration_s
        while t < end:
            on_charger, until_s = charging(t)
            seg_end = min(end, until_s)
            dt = seg_end - t
            if on_charger:
                level = min(battery.capacity_wh, max(0.0, level + (battery.charge_w - power_w) * dt * WH_PER_WS))
            else:
                after = level - power_w * dt * WH_PER_WS
                if math.isinf(leave) and after <= threshold:
                    leave = t if level <= threshold else t + (level - threshold) / (power_w * WH_PER_WS)
                level = max(0.0, after)
            t = seg_end
    return Drain(leave, level)


def level_wh(battery: Battery, level: float, since_s: float, now_s: float, charging: ChargingAt) -> float:
    """The level at ``now_s`` of an idle device whose level was ``level`` at ``since_s``."""
    return drain(battery, level, since_s, [(max(now_s - since_s, 0.0), battery.idle_drain_w)], charging).level_wh
