"""Device availability: an alternating renewal process of online and offline periods, sampled lazily.

Periods have exponentially distributed lengths (a common fit to device traces; FedScale and FLASH replay
such on/off intervals). A device's state is three numbers (period index, online, end of the period); the
next period is drawn only when the state is asked for past the current period's end, from a stream keyed
by (device, period index), so 100k devices cost no processes and the draws never depend on query order.
"""

from __future__ import annotations

import numpy as np

from fleetsim.spec.profiles import Availability

__all__ = ["first_period", "period_length_s"]


def first_period(avail: Availability, rng: np.random.Generator) -> tuple[bool, float]:
    """(online, seconds until the first change) at time 0, from the stationary distribution.

    Online with probability on/(on+off); the residual of an exponential period is again exponential with
    the same mean (memorylessness).
    """
    online = bool(rng.random() < avail.online_share)
    return online, period_length_s(avail, online, rng)


def period_length_s(avail: Availability, online: bool, rng: np.random.Generator) -> float:
    """Length of an online (or offline) period."""
    return float(rng.exponential(avail.mean_online_s if online else avail.mean_offline_s))
