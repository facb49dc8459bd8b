"""The server's links, shared by the transfers in flight (``server.downlink_mbps``, ``server.uplink_mbps``).

Without a cap every transfer runs at its device's drawn link speed, and an update's course is planned once,
when it starts (:class:`~fleetsim.sim.client.Attempt`). With a cap, the transfers in one direction share it
max-min fairly, each never faster than its own link (water-filling: Bertsekas & Gallager, *Data Networks*,
2nd ed., 1992, §6.5.2), so a transfer's speed changes whenever another one in that direction starts or ends.
:class:`ServerLink` then runs every update in flight, and keeps each one's course exact:

* a transfer's bits are counted at its share, and its end moves whenever its share changes;
* its update is re-planned (:meth:`Attempt.replan`: when each phase ends, when and how it is lost) when
  the transfer's bits are through, and when the transfer outlasts the end its plan expected. A plan made
  at an earlier share stays right until then: while a transfer runs the device draws constant radio
  power, so a loss the plan puts inside the transfer (battery, availability, outage, failure) happens at
  that moment whatever the transfer's speed; only what follows the transfer moves with its end.

Link latency follows a transfer's bits and holds no share. Each moment costs O(transfers in progress), as
the shares are worked out again, plus O(log updates in flight).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import simpy

from fleetsim.sim.client import Attempt

__all__ = ["ServerLink", "fair_shares"]

DOWNLOAD, COMPUTE, UPLOAD = 0, 1, 2  # an attempt's phases, as in Attempt.durations


def fair_shares(own_bps: Sequence[float], capacity_bps: float) -> list[float]:
    """Max-min fair rates of flows each limited to ``own_bps`` sharing ``capacity_bps``: every flow gets
    ``min(own, level)``, the level set so the rates add up to the capacity (or every flow runs at its own
    rate, when they add up to less)."""
    rates = [0.0] * len(own_bps)
    order = sorted(range(len(own_bps)), key=own_bps.__getitem__)
    left = capacity_bps
    for k, i in enumerate(order):
        level = left / (len(order) - k)
        if own_bps[i] > level:
            for j in order[k:]:
                rates[j] = level
            break
        rates[i] = own_bps[i]
        left -= own_bps[i]
    return rates


@dataclass(slots=True)
class _Course:
    """An update on the link: which transfer it is in (``DOWNLOAD``, ``UPLOAD`` or None), its bits left at
    the last moment, its rate, when its bits are through at that rate, and whether its update's plan was
    made at that rate (``fresh``)."""

    key: int
    attempt: Attempt
    on_end: Callable[[Attempt], None]
    direction: int | None
    bits_left: float
    rate_bps: float = 0.0
    bits_end_s: float = math.inf
    upload_start_s: float = math.inf
    fresh: bool = True
    version: int = 0  # of its entry in the waiting heap

    def own_bps(self) -> float:
        cond = self.attempt.cond
        return (cond.downlink_mbps if self.direction == DOWNLOAD else cond.uplink_mbps) * 1e6

    def close(self) -> None:
        """The update ends now: plan its transfer in progress at its current rate (the record's planned phase
        times; a loss inside a transfer stays where it was) and tell it the bytes it sent each way (its
        transfers ran at changing speeds)."""
        a = self.attempt
        if self.direction is not None and not self.fresh:
            self.replan()
        down, up = a.cost.download_bytes, a.cost.upload_bytes
        if self.direction == DOWNLOAD:
            down, up = int(down - self.bits_left / 8), 0
        elif self.direction == UPLOAD:
            up = int(up - self.bits_left / 8)
        elif self.upload_start_s == math.inf:  # downloaded, not uploading yet
            up = 0
        a.sent_bytes = (down, up)

    def next_s(self) -> float:
        """The next moment the link must look at this update: its bits through, the end of the transfer its
        plan expected, its upload starting, or its end (arrival or loss)."""
        a = self.attempt
        if self.direction is not None:
            return min(self.bits_end_s, a.end_s, math.inf if self.fresh else a.ends[self.direction])
        if self.upload_start_s == math.inf:  # downloaded, computing: the upload starts at the compute's end
            return min(a.ends[COMPUTE], a.end_s)
        return a.end_s  # uploaded: only the latency is left

    def replan(self) -> None:
        """Re-plan the update with its transfer in progress (or just through) ending at its current rate."""
        a = self.attempt
        transfer_s = self.bits_end_s + a.latency_s
        dl, cp, ul = a.durations
        if self.direction == DOWNLOAD:
            a.replan((transfer_s - a.start_s, cp, ul))
        else:
            a.replan((dl, cp, transfer_s - self.upload_start_s))
        self.fresh = True


class ServerLink:
    """Runs updates whose transfers share the server's capacities (Mbit/s; None: that direction is not
    capped). :meth:`start` an update now; it calls back when the update ends (delivered or lost, as
    :attr:`Attempt.outcome` then says); :meth:`cancel` one the server stops early."""

    def __init__(self, env: simpy.Environment, downlink_mbps: float | None, uplink_mbps: float | None):
        self.env = env
        self.capacity_bps = {
            DOWNLOAD: math.inf if downlink_mbps is None else downlink_mbps * 1e6,
            UPLOAD: math.inf if uplink_mbps is None else uplink_mbps * 1e6,
        }
        self._courses: dict[int, _Course] = {}
        self._flows: dict[int, dict[int, _Course]] = {DOWNLOAD: {}, UPLOAD: {}}  # transferring, in start order
        self._waiting: list[tuple[float, int, int]] = []  # (next moment, key, version) of the others
        self._next_key = 0
        self._last_s = env.now
        self._token = 0  # the pending wake-up that counts (earlier ones are stale)

    def start(self, attempt: Attempt, on_end: Callable[[Attempt], None]) -> int:
        """Start ``attempt`` (planned from now) with its download; return its key (for :meth:`cancel`)."""
        now = max(self.env.now, self._last_s)  # the clock may lag the last moment planned by a rounding
        self._advance(now)
        key = self._next_key
        self._next_key += 1
        c = _Course(key, attempt, on_end, DOWNLOAD, attempt.cost.download_bytes * 8)
        self._courses[key] = self._flows[DOWNLOAD][key] = c
        self._settle(now, [], {DOWNLOAD})
        return key

    def cancel(self, key: int) -> None:
        """The server stopped the update now (deadline, over-commitment): its transfer frees its share."""
        now = max(self.env.now, self._last_s)
        self._advance(now)
        c = self._courses.pop(key, None)
        if c is not None:
            c.close()
            if c.direction is not None:
                del self._flows[c.direction][key]
            self._settle(now, [], set() if c.direction is None else {c.direction})

    def _advance(self, now: float) -> None:
        """Count the bits sent from the last moment to ``now``."""
        elapsed = now - self._last_s
        for flows in self._flows.values():
            for c in flows.values():
                if c.bits_end_s <= now:  # through (also when the clock cannot resolve what was left)
                    c.bits_left = 0.0
                elif elapsed > 0:
                    c.bits_left -= c.rate_bps * elapsed
        self._last_s = max(self._last_s, now)

    def _due(self, now: float) -> list[_Course]:
        """The updates with something to do at ``now``, in start order."""
        due = {c.key: c for flows in self._flows.values() for c in flows.values() if c.next_s() <= now}
        while self._waiting and self._waiting[0][0] <= now:
            _, key, version = heapq.heappop(self._waiting)
            c = self._courses.get(key)
            if c is not None and c.version == version:
                due[key] = c
        return [due[k] for k in sorted(due)]

    def _settle(self, now: float, due: list[_Course], changed: set[int]) -> None:
        """Take every change due at ``now`` (ends, transfers through, uploads starting, plans outlasted),
        share the capacities of the directions ``changed`` again and wake at the next moment. (``now`` is the
        moment planned, which the SimPy clock may miss by a rounding: it adds the delay to its time.)"""
        ended = []
        for c in due:
            if self._step(c, now, changed):
                ended.append(c)
        for direction in changed:
            flows = list(self._flows[direction].values())
            rates = fair_shares([c.own_bps() for c in flows], self.capacity_bps[direction])
            for c, rate in zip(flows, rates, strict=True):
                if rate != c.rate_bps:
                    c.rate_bps, c.bits_end_s, c.fresh = rate, now + c.bits_left / rate, False
        for c in ended:
            c.on_end(c.attempt)
        self._wake_at(self._next_s())

    def _step(self, c: _Course, now: float, changed: set[int]) -> bool:
        """Take what is due for ``c`` at ``now`` (``changed`` gets the directions it joins or leaves); return
        whether its update ended."""
        a = c.attempt
        replanned = False
        while True:
            d = c.direction
            if d is not None and c.bits_left <= 0.0:  # through: plan the rest exactly
                c.replan()
                del self._flows[d][c.key]
                changed.add(d)
                c.direction, c.rate_bps, c.bits_end_s = None, 0.0, math.inf
            elif a.end_s <= now and (d is None or c.fresh or a.end_s < a.ends[d]):  # (a loss inside the transfer)
                del self._courses[c.key]
                if d is not None:
                    del self._flows[d][c.key]
                    changed.add(d)
                c.close()
                return True
            elif d is not None and not c.fresh and a.ends[d] <= now and not replanned:  # outlasts its plan
                c.replan()
                replanned = True
            elif d is None and c.upload_start_s == math.inf and a.ends[COMPUTE] <= now:
                c.direction, c.bits_left, c.upload_start_s = UPLOAD, a.cost.upload_bytes * 8, a.ends[COMPUTE]
                self._flows[UPLOAD][c.key] = c
                changed.add(UPLOAD)
                return False
            else:
                if d is None:
                    c.version += 1
                    heapq.heappush(self._waiting, (c.next_s(), c.key, c.version))
                return False

    def _next_s(self) -> float:
        while self._waiting:
            _, key, version = self._waiting[0]
            c = self._courses.get(key)
            if c is not None and c.version == version:
                break
            heapq.heappop(self._waiting)
        waiting = self._waiting[0][0] if self._waiting else math.inf
        return min([waiting, *(c.next_s() for flows in self._flows.values() for c in flows.values())])

    def _wake_at(self, at_s: float) -> None:
        self._token += 1
        if at_s == math.inf:
            return
        token = self._token

        def wake(_: simpy.Event) -> None:
            if token == self._token:
                self._advance(at_s)
                self._settle(at_s, self._due(at_s), set())

        self.env.timeout(max(at_s - self.env.now, 0.0)).callbacks.append(wake)
