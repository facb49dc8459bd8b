"""Device availability: online and offline periods, drawn lazily, one model per profile (or fleet group).

A device's availability state is three numbers (period index, online, end of the period). The next period
is computed only when the state is asked for past the current period's end, from streams keyed by
(device, period or day), so 100k devices cost no processes and the draws never depend on query order.

* ``exponential``: alternating online/offline periods with exponential lengths (a common fit to device
  traces; FedScale and FLASH replay such on/off intervals), starting from the stationary distribution.
* ``diurnal``: one online window per local night (:class:`~fleetsim.spec.profiles.Diurnal`). Period 2j is
  the offline time before day j's window, period 2j + 1 the window itself; days count from −1 so a window
  that opened the evening before the run starts is found. Draws come a block of days at a time for a whole
  fleet group (:class:`DiurnalDraws`).
* ``trace``: replayed intervals (:mod:`fleetsim.world.traces`). Period 2i is the offline time before the
  device's i-th interval, period 2i + 1 the interval; after the last one the device stays offline.
"""

from __future__ import annotations

import math

import numpy as np

from fleetsim.core.rng import Streams
from fleetsim.spec.profiles import Availability, AvailabilityModel, Diurnal
from fleetsim.world.traces import device_intervals

__all__ = ["DiurnalDraws", "first_state", "next_change_s", "period_length_s"]

DAY_S = 86_400.0
HOUR_S = 3_600.0
_FIRST_DAY = -1  # diurnal days are counted from the day before the run starts


def period_length_s(avail: Availability, online: bool, rng: np.random.Generator) -> float:
    """Length of an exponential online (or offline) period."""
    return float(rng.exponential(avail.mean_online_s if online else avail.mean_offline_s))


class DiurnalDraws:
    """The standard normals behind one fleet group's diurnal windows, drawn a block of days at a time for
    the whole group (one stream per (group, block)), so 100k devices cost a few arrays, not 100k streams;
    a device's draws depend only on the seed, its group, its slot and the day."""

    DAYS_PER_BLOCK = 8

    def __init__(self, streams: Streams, group: int, count: int, stream: str = "availability-diurnal"):
        self.streams, self.group, self.count, self.stream = streams, group, count, stream
        self._blocks: dict[int, np.ndarray] = {}

    def normals(self, slot: int, day: int) -> tuple[float, float]:
        """(start, length) standard normals of the window of ``day`` (from −1) of the group's ``slot``-th device."""
        block, i = divmod(day - _FIRST_DAY, self.DAYS_PER_BLOCK)
        if block not in self._blocks:
            rng = self.streams.generator(self.stream, self.group, block)
            self._blocks[block] = rng.standard_normal((self.count, self.DAYS_PER_BLOCK, 2))
        z = self._blocks[block]
        return z.item(slot, i, 0), z.item(slot, i, 1)


def diurnal_window_s(avail: Diurnal, slot: int, day: int, draws: DiurnalDraws) -> tuple[float, float]:
    """(start, end) of the device's online window of local ``day``, in seconds of simulated time."""
    z_start, z_hours = draws.normals(slot, day)
    offset_h = avail.utc_offsets_h[slot % len(avail.utc_offsets_h)]
    start_h = avail.start_h + min(max(avail.start_sd_h * z_start, -3.0), 3.0)
    hours = min(max(avail.hours + avail.hours_sd * z_hours, 0.5), 17.0)
    start_s = day * DAY_S + (start_h - offset_h) * HOUR_S
    return start_s, start_s + hours * HOUR_S


def next_change_s(
    avail: AvailabilityModel,
    device_id: int,
    slot: int,
    period: int,
    online: bool,
    since_s: float,
    streams: Streams,
    draws: DiurnalDraws | None = None,
) -> float:
    """When period ``period`` (online or not), which began at ``since_s``, ends (``draws``: the device's
    group's, for diurnal availability)."""
    if isinstance(avail, Availability):
        return since_s + period_length_s(avail, online, streams.generator("availability", device_id, period))
    if isinstance(avail, Diurnal):
        assert draws is not None, "diurnal availability needs its group's draws"
        start_s, end_s = diurnal_window_s(avail, slot, _FIRST_DAY + period // 2, draws)
        return end_s if online else start_s
    starts, ends = device_intervals(avail, slot)
    i = period // 2
    if i >= len(starts):
        return math.inf
    return float(ends[i] if online else starts[i])


def first_state(
    avail: AvailabilityModel, device_id: int, slot: int, streams: Streams, draws: DiurnalDraws | None = None
) -> tuple[int, bool, float]:
    """(period, online, end of the period) at time 0.

    Exponential: online with probability on/(on+off), and the residual of an exponential period is again
    exponential with the same mean (memorylessness). Diurnal and trace: the periods are walked from the
    first one until one covers time 0.
    """
    if isinstance(avail, Availability):
        rng = streams.generator("availability", device_id, 0)
        online = bool(rng.random() < avail.online_share)
        return 0, online, period_length_s(avail, online, rng)
    period, online = 0, False
    change = next_change_s(avail, device_id, slot, period, online, -math.inf, streams, draws)
    while change <= 0.0:
        period, online = period + 1, not online
        change = next_change_s(avail, device_id, slot, period, online, change, streams, draws)
    return period, online, change
