"""The server's links, shared by the transfers in flight (``server.downlink_mbps``, ``server.uplink_mbps``).

Without a cap every transfer runs at its device's drawn link speed, and an update's course is planned once,
when it starts (:class:`~fleetsim.sim.client.Attempt`). With a cap, the transfers in one direction share it
max-min fairly, each never faster than its own link (water-filling: Bertsekas & Gallager, *Data Networks*,
2nd ed., 1992, §6.5.2), so a transfer's speed changes whenever another one in that direction starts or ends.
:class:`ServerLink` then runs every update in flight. At each such moment it re-plans the updates whose
share changed (the phases so far as they ran, the transfer in progress at its new share, an upload not yet
started at its own speed), so each update's loss moment and end are exact: nothing changes its course
between two re-plans. A transfer's link latency follows its bytes and holds no share of the cap.

Every moment is one SimPy timeout (the earliest next change of any update in flight); a re-plan is O(n) in
the updates in flight, so a cap suits rounds of tens to thousands of updates, not 100,000 in flight.
"""

from __future__ import annotations

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
    the last moment, its rate and when its bits are through at that rate."""

    attempt: Attempt
    on_end: Callable[[Attempt], None]
    direction: int | None
    bits_left: float
    rate_bps: float = 0.0
    bits_end_s: float = math.inf
    upload_start_s: float = math.inf

    def own_bps(self) -> float:
        cond = self.attempt.cond
        return (cond.downlink_mbps if self.direction == DOWNLOAD else cond.uplink_mbps) * 1e6

    def count_sent(self) -> None:
        """Tell the update the bytes it sent each way by now (its transfers ran at changing speeds)."""
        a = self.attempt
        down, up = a.cost.download_bytes, a.cost.upload_bytes
        if self.direction == DOWNLOAD:
            down, up = int(down - self.bits_left / 8), 0
        elif self.direction == UPLOAD:
            up = int(up - self.bits_left / 8)
        elif self.upload_start_s == math.inf:  # downloaded, not uploading yet
            up = 0
        a.sent_bytes = (down, up)

    def next_s(self) -> float:
        """The next moment the link must look at this update: its bits through, its upload starting, or
        its end (arrival or loss)."""
        a = self.attempt
        if self.direction is not None:
            return min(self.bits_end_s, a.end_s)
        if self.upload_start_s == math.inf:  # downloaded, computing: the upload starts at the compute's end
            return min(a.ends[COMPUTE], a.end_s)
        return a.end_s  # uploaded: only the latency is left


class ServerLink:
    """Runs updates whose transfers share the server's capacities (bits/s; ``inf``: that direction is not
    capped). :meth:`start` an update now; it calls back when the update ends (delivered or lost, as
    :attr:`Attempt.outcome` then says); :meth:`cancel` one the server stops early."""

    def __init__(self, env: simpy.Environment, downlink_mbps: float | None, uplink_mbps: float | None):
        self.env = env
        self.capacity_bps = {
            DOWNLOAD: math.inf if downlink_mbps is None else downlink_mbps * 1e6,
            UPLOAD: math.inf if uplink_mbps is None else uplink_mbps * 1e6,
        }
        self._courses: dict[int, _Course] = {}  # in start order
        self._next_key = 0
        self._last_s = env.now
        self._token = 0  # the pending wake-up that counts (earlier ones are stale)

    def start(self, attempt: Attempt, on_end: Callable[[Attempt], None]) -> int:
        """Start ``attempt`` (planned from now) with its download; return its key (for :meth:`cancel`)."""
        now = max(self.env.now, self._last_s)  # the clock may lag the last moment planned by a rounding
        self._advance(now)
        key = self._next_key
        self._next_key += 1
        self._courses[key] = _Course(attempt, on_end, DOWNLOAD, attempt.cost.download_bytes * 8)
        self._settle(now)
        return key

    def cancel(self, key: int) -> None:
        """The server stopped the update now (deadline, over-commitment): its transfer frees its share."""
        now = max(self.env.now, self._last_s)  # the clock may lag the last moment planned by a rounding
        self._advance(now)
        c = self._courses.pop(key, None)
        if c is not None:
            c.count_sent()
            self._settle(now)

    def _advance(self, now: float) -> None:
        """Count the bits sent from the last moment to ``now``."""
        elapsed = now - self._last_s
        for c in self._courses.values():
            if c.direction is not None:
                if c.bits_end_s <= now:  # through (also when the clock cannot resolve what was left)
                    c.bits_left = 0.0
                elif elapsed > 0:
                    c.bits_left -= c.rate_bps * elapsed
        self._last_s = max(self._last_s, now)

    def _settle(self, now: float) -> None:
        """Take every change due at ``now`` (ends, transfers through, uploads starting), share the
        capacities again, re-plan the updates whose rate changed and wake at the next moment. (``now`` is the
        moment planned, which the SimPy clock may miss by a rounding: it adds the delay to its time.)"""
        ended = []
        for key, c in list(self._courses.items()):
            a = c.attempt
            if a.end_s <= now:
                del self._courses[key]
                c.count_sent()
                ended.append(c)
                continue
            if c.direction is not None and c.bits_left <= 0.0:
                c.direction, c.rate_bps, c.bits_end_s = None, 0.0, math.inf
            if c.direction is None and c.upload_start_s == math.inf and a.ends[COMPUTE] <= now:
                c.direction, c.bits_left, c.upload_start_s = UPLOAD, a.cost.upload_bytes * 8, a.ends[COMPUTE]
                c.rate_bps = 0.0  # joins: its share is set below
        for direction in (DOWNLOAD, UPLOAD):
            flows = [c for c in self._courses.values() if c.direction == direction]
            rates = fair_shares([c.own_bps() for c in flows], self.capacity_bps[direction])
            for c, rate in zip(flows, rates, strict=True):
                if rate != c.rate_bps:
                    c.rate_bps, c.bits_end_s = rate, now + c.bits_left / rate
                    self._replan(c)
        for c in ended:
            c.on_end(c.attempt)
        self._wake_at(min((c.next_s() for c in self._courses.values()), default=math.inf))

    @staticmethod
    def _replan(c: _Course) -> None:
        """Re-plan ``c``'s update with its transfer in progress ending at its new rate."""
        a = c.attempt
        transfer_s = c.bits_end_s + a.latency_s
        dl, cp, ul = a.durations
        if c.direction == DOWNLOAD:
            a.replan((transfer_s - a.start_s, cp, ul))
        else:
            a.replan((dl, cp, transfer_s - c.upload_start_s))

    def _wake_at(self, at_s: float) -> None:
        self._token += 1
        if at_s == math.inf:
            return
        token = self._token

        def wake(_: simpy.Event) -> None:
            if token == self._token:
                self._advance(at_s)
                self._settle(at_s)

        self.env.timeout(max(at_s - self.env.now, 0.0)).callbacks.append(wake)
