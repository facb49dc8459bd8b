"""The precision at which decisions read numbers the host computed.

Losses and accuracies come out of real training, and their last digits depend on the host: the same update
differs by ~1e-7 (relative) between 1 and 2 CPU threads. A policy that compared such numbers at full
precision would choose differently on different machines. Every decision fed by a host-computed number (a
bandit's reward, a trial between candidate models) reads it at ``DECISION_DIGITS`` significant digits.
"""

from __future__ import annotations

import math

__all__ = ["DECISION_DIGITS", "decision_value"]

DECISION_DIGITS = 4


def decision_value(x: float) -> float:
    """``x`` rounded to ``DECISION_DIGITS`` significant digits (non-finite values unchanged)."""
    return float(f"{x:.{DECISION_DIGITS}g}") if math.isfinite(x) else x
