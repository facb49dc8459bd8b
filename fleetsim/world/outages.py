"""Correlated outages: windows in which a share of a set of devices is offline together (no SimPy).

Scheduled outages are the scenario's windows. Random ones are drawn lazily, in order, outage by outage:
outage i of process k starts an Exponential(mean_interval_s) gap after outage i − 1 started and lasts
Exponential(mean_duration_s), from the stream ("outage", k, i); which eligible devices it takes is drawn
from the same stream (one uniform per device, in device order), so nothing depends on query order.
Outages are looked ahead at most :data:`HORIZON_S` past the moment asked about: an update never lasts that
long.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fleetsim.core.rng import Streams
from fleetsim.spec.scenario import OutageSpec

__all__ = ["HORIZON_S", "Outage", "Outages"]

HORIZON_S = 7 * 86_400.0


@dataclass(frozen=True)
class Outage:
    start_s: float
    end_s: float
    hit: np.ndarray  # (devices,) bool: the devices this outage takes offline


class Outages:
    """Every outage process of a run over a fleet of ``n_devices`` whose ``eligible[k]`` mask says which
    devices process k may take."""

    def __init__(self, specs: list[OutageSpec], eligible: list[np.ndarray], streams: Streams):
        self.specs, self.eligible, self.streams = specs, eligible, streams
        self._drawn: list[list[Outage]] = [[] for _ in specs]
        self._next_start: list[float] = [0.0] * len(specs)  # random processes: start of the next undrawn outage
        for k, spec in enumerate(specs):
            if spec.windows_s is not None:
                self._drawn[k] = [self._outage(k, i, s, e) for i, (s, e) in enumerate(sorted(spec.windows_s))]
                self._next_start[k] = math.inf
            else:
                self._next_start[k] = self._gap(k, 0)

    def __bool__(self) -> bool:
        return bool(self.specs)

    def _gap(self, k: int, i: int) -> float:
        spec = self.specs[k]
        assert spec.mean_interval_s is not None
        return float(self.streams.generator("outage-gap", k, i).exponential(spec.mean_interval_s))

    def _outage(self, k: int, i: int, start_s: float, end_s: float | None = None) -> Outage:
        spec, eligible = self.specs[k], self.eligible[k]
        rng = self.streams.generator("outage", k, i)
        if end_s is None:
            assert spec.mean_duration_s is not None
            end_s = start_s + float(rng.exponential(spec.mean_duration_s))
        hit = eligible & (rng.random(eligible.shape[0]) < spec.fraction)
        return Outage(start_s, end_s, hit)

    def _outages(self, k: int, until_s: float) -> list[Outage]:
        """Process k's outages, drawn until one starts after ``until_s``."""
        drawn = self._drawn[k]
        while self._next_start[k] <= until_s:
            i = len(drawn)
            drawn.append(self._outage(k, i, self._next_start[k]))
            self._next_start[k] += self._gap(k, i + 1)
        return drawn

    def down_until_s(self, device_id: int, now_s: float) -> float:
        """When the outages covering ``device_id`` at ``now_s`` end (``now_s``: none covers it)."""
        until = now_s
        changed = True
        while changed:  # back-to-back or overlapping outages extend each other
            changed = False
            for k in range(len(self.specs)):
                for o in self._outages(k, until):
                    if o.start_s <= until < o.end_s and o.hit[device_id]:
                        until, changed = o.end_s, True
        return until

    def next_start_s(self, device_id: int, now_s: float) -> float:
        """When the next outage that takes ``device_id`` starts after ``now_s`` (within the horizon; else inf)."""
        first = math.inf
        for k in range(len(self.specs)):
            for o in self._outages(k, now_s + HORIZON_S):
                if now_s < o.start_s < first and o.hit[device_id]:
                    first = o.start_s
                    break
        return first
