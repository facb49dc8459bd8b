"""Confidence intervals: how much of a difference is noise.

* :func:`wilson_interval` — the 95% Wilson score interval of a proportion (Wilson 1927; Brown, Cai &
  DasGupta 2001 recommend it over the normal approximation for small n or proportions near 0 or 1): the
  sampling noise of an accuracy measured on n evaluation examples.
"""

from __future__ import annotations

import math

__all__ = ["Z_95", "wilson_interval"]

Z_95 = 1.959963984540054  # two-sided 95% quantile of the standard normal


def wilson_interval(proportion: float, n: int, z: float = Z_95) -> tuple[float, float]:
    """(low, high) of the Wilson score interval for ``proportion`` observed on ``n`` trials.

    centre = (p̂ + z²/2n) / (1 + z²/n),  half-width = z / (1 + z²/n) · √(p̂(1−p̂)/n + z²/4n²)
    """
    if n <= 0 or math.isnan(proportion):
        return math.nan, math.nan
    z2 = z * z
    denominator = 1.0 + z2 / n
    centre = (proportion + z2 / (2 * n)) / denominator
    half = z / denominator * math.sqrt(proportion * (1.0 - proportion) / n + z2 / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)
