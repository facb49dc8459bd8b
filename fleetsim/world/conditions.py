"""Per-update conditions: link speeds, straggler slow-down and failure point, drawn from a device's profile.

:func:`draw_conditions` gives the random conditions of one update (from the stream the fleet keys by
round and device); :func:`median_conditions` gives the typical ones (median links, no slow-down, no
failure), which the configurator uses to *expect* an update's time with the same time model.
"""

from __future__ import annotations

import math

import numpy as np

from fleetsim.core.updates import Conditions
from fleetsim.spec.profiles import DeviceProfile

__all__ = ["draw_conditions", "median_conditions"]


def draw_conditions(profile: DeviceProfile, rng: np.random.Generator, link: str | None = None) -> Conditions:
    """Link speeds (of the device's ``link`` type when its profile has several), straggler factor
    (LogNormal(0, σ), median 1) and failure point of one update."""
    if link is not None and profile.links is not None:
        down = profile.links[link].downlink_mbps.sample(rng)
        up = profile.links[link].uplink_mbps.sample(rng)
    else:
        down = profile.downlink_mbps.sample(rng)
        up = profile.uplink_mbps.sample(rng)
    straggler = float(math.exp(profile.straggler_sigma * rng.standard_normal()))
    fails = rng.random() < profile.failure_prob_per_update
    fraction = float(rng.random())
    return Conditions(down, up, straggler, fraction if fails else None)


def median_conditions(profile: DeviceProfile) -> Conditions:
    """Median link speeds, no straggler slow-down, no failure."""
    return Conditions(
        downlink_mbps=profile.downlink_mbps.median_value(),
        uplink_mbps=profile.uplink_mbps.median_value(),
        straggler_factor=1.0,
        failure_fraction=None,
    )
