"""Per-update conditions: link speeds, straggler slow-down and failure point, drawn from a device's profile.

An update's conditions come from five random numbers — standard normals for the downlink, the uplink and
the straggler factor, uniforms for whether it fails and where — drawn from the stream the fleet keys by
round and device (:func:`draw_conditions`), or, in asynchronous rounds, from row ``serial`` of
:class:`SerialDraws`, which draws them a block of updates at a time. :func:`median_conditions` gives the
typical ones (median links, no slow-down, no failure), which the configurator uses to *expect* an update's
time with the same time model.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from fleetsim.core.rng import Streams
from fleetsim.core.updates import Conditions
from fleetsim.spec.profiles import DeviceProfile

__all__ = ["SerialDraws", "conditions_from", "draw_conditions", "median_conditions"]


def conditions_from(
    profile: DeviceProfile, normals: Sequence[float], uniforms: Sequence[float], link: str | None = None
) -> Conditions:
    """Link speeds (of the device's ``link`` type when its profile has several), straggler factor
    (LogNormal(0, σ), median 1) and failure point of one update, from its three standard normals and two
    uniforms."""
    links = profile.links[link] if link is not None and profile.links is not None else profile
    down = links.downlink_mbps.at(normals[0])
    up = links.uplink_mbps.at(normals[1])
    straggler = math.exp(profile.straggler_sigma * normals[2])
    fails = uniforms[0] < profile.failure_prob_per_update
    return Conditions(down, up, straggler, float(uniforms[1]) if fails else None)


def draw_conditions(profile: DeviceProfile, rng: np.random.Generator, link: str | None = None) -> Conditions:
    """The conditions of one update from its own stream ``rng``."""
    return conditions_from(profile, rng.standard_normal(3).tolist(), rng.random(2).tolist(), link)


class SerialDraws:
    """The random numbers of numbered updates (asynchronous rounds' serials), drawn for a block of serials at
    a time from one stream per block: row ``serial`` depends only on the seed and the serial."""

    ROWS = 1024

    def __init__(self, streams: Streams, name: str = "update-conditions-serial"):
        self.streams, self.name = streams, name
        self._block = -1
        self._normals: list[list[float]] = []
        self._uniforms: list[list[float]] = []

    def row(self, serial: int) -> tuple[list[float], list[float]]:
        """(three standard normals, two uniforms) of update ``serial``."""
        block, i = divmod(serial, self.ROWS)
        if block != self._block:
            rng = self.streams.generator(self.name, block)
            self._normals = rng.standard_normal((self.ROWS, 3)).tolist()
            self._uniforms = rng.random((self.ROWS, 2)).tolist()
            self._block = block
        return self._normals[i], self._uniforms[i]


def median_conditions(profile: DeviceProfile) -> Conditions:
    """Median link speeds, no straggler slow-down, no failure."""
    return Conditions(
        downlink_mbps=profile.downlink_mbps.median_value(),
        uplink_mbps=profile.uplink_mbps.median_value(),
        straggler_factor=1.0,
        failure_fraction=None,
    )
