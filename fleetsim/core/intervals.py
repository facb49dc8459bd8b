"""Confidence intervals: how much of a difference is noise.

* :func:`wilson_interval` — the 95% Wilson score interval of a proportion (Wilson 1927; Brown, Cai &
  DasGupta 2001 recommend it over the normal approximation for small n or proportions near 0 or 1): the
  sampling noise of an accuracy measured on n evaluation examples.
* :func:`bootstrap_interval` — the percentile bootstrap interval of a mean over repetitions (seeds): how far
  a result moves when the fleet draw, the partition and every random choice change (Efron & Tibshirani 1993).
* :func:`t_interval` — a pointwise Student-t interval of a mean curve, for the band around mean curves.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = ["Z_95", "bootstrap_interval", "t_interval", "wilson_interval"]

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


def bootstrap_interval(values: Sequence[float], confidence: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values`` (``scipy.stats.bootstrap``, 9,999 resamples,
    a fixed seed so the same values give the same interval). One value: no interval (NaN); identical
    values: that value."""
    data = np.asarray([v for v in values if not math.isnan(v)], dtype=float)
    if len(data) < 2:
        return math.nan, math.nan
    if np.ptp(data) == 0:
        return float(data[0]), float(data[0])
    from scipy.stats import bootstrap

    result = bootstrap(
        (data,),
        np.mean,
        confidence_level=confidence,
        n_resamples=9999,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def t_interval(values: np.ndarray, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Pointwise Student-t interval of the mean over axis 0 (rows are repetitions): mean ∓ t·s/√n."""
    from scipy.stats import t

    n = values.shape[0]
    mean = values.mean(axis=0)
    if n < 2:
        return mean, mean
    half = t.ppf(0.5 + confidence / 2, n - 1) * values.std(axis=0, ddof=1) / math.sqrt(n)
    return mean - half, mean + half
