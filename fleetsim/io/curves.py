"""A run's accuracy as a function of simulated time, read where runs must be compared at equal time.

The global model's accuracy is known at each evaluation; between evaluations it is the last one measured
(a step function starting at the initial model's accuracy at time 0). Reading every run at the same
simulated times, and averaging each curve over the same horizon, compares methods at equal wall-clock
time rather than at each one's own stopping point.
"""

from __future__ import annotations

import math

import numpy as np

from fleetsim.io.runs import Run

__all__ = ["accuracy_at", "accuracy_curve", "time_averaged_accuracy", "time_unit"]


def time_unit(longest_s: float) -> tuple[float, str]:
    """(seconds per unit, unit name) for an axis that spans ``longest_s`` simulated seconds."""
    if longest_s < 120:
        return 1.0, "seconds"
    if longest_s < 7200:
        return 60.0, "minutes"
    return 3600.0, "hours"


def accuracy_curve(run: Run) -> tuple[np.ndarray, np.ndarray]:
    """(times_s, accuracies): 0 and the initial accuracy, then each evaluated round's end and accuracy."""
    evaluated = run.rounds.dropna(subset=["accuracy"]) if "accuracy" in run.rounds else run.rounds.iloc[:0]
    times = np.concatenate([[0.0], evaluated.end_s.to_numpy(dtype=float)])
    accuracies = np.concatenate([[run.summary.get("initial_accuracy", math.nan)], evaluated.accuracy.to_numpy(float)])
    return times, accuracies


def accuracy_at(run: Run, times_s: np.ndarray | float) -> np.ndarray:
    """Accuracy of the last evaluation at or before each time (NaN past the run's end)."""
    times, accuracies = accuracy_curve(run)
    query = np.atleast_1d(np.asarray(times_s, dtype=float))
    out = accuracies[np.searchsorted(times, query, side="right") - 1]
    end = float(run.summary.get("sim_time_s", times[-1]))
    return np.where(query > end + 1e-9, math.nan, out)


def time_averaged_accuracy(run: Run, horizon_s: float) -> float:
    """∫₀ᴴ accuracy(t) dt / H for the step curve: the area under accuracy-versus-time per second
    (NaN if the run ended before ``horizon_s``)."""
    times, accuracies = accuracy_curve(run)
    if horizon_s <= 0 or horizon_s > float(run.summary.get("sim_time_s", times[-1])) + 1e-9:
        return math.nan
    edges = np.append(times[times < horizon_s], horizon_s)
    return float(np.sum(np.diff(edges) * accuracies[: len(edges) - 1]) / horizon_s)
