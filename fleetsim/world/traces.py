"""Availability traces: measured online intervals per device, read once per file.

A trace is a CSV or Parquet table with columns ``device`` (any id), ``online_start_s`` and
``online_end_s``. Each device's intervals are sorted by start; overlapping or touching intervals are
merged. The k-th device of a fleet group replays the k-th trace device (trace ids sorted), cycling when
the group has more devices than the trace.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from fleetsim.core.errors import InputError
from fleetsim.spec.profiles import Trace

__all__ = ["device_intervals", "read_trace"]

COLUMNS = ("device", "online_start_s", "online_end_s")


@functools.lru_cache(maxsize=16)
def read_trace(path: str) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """Per trace device (ids sorted): (starts, ends) arrays of merged online intervals, seconds.

    Raises :class:`InputError` naming the file for a missing file, a missing column or an interval that
    ends before it starts."""
    import pandas as pd

    file = Path(path)
    if not file.is_file():
        raise InputError(file, "availability.file", "an existing CSV or Parquet trace", path)
    try:
        table = pd.read_parquet(file) if file.suffix == ".parquet" else pd.read_csv(file)
    except Exception as err:
        first = (str(err).splitlines() or [""])[0]
        raise InputError(file, "(file)", "a CSV or Parquet table", f"{type(err).__name__}: {first}") from None
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise InputError(file, missing[0], f"columns {', '.join(COLUMNS)}", ", ".join(map(str, table.columns)))
    if table.empty:
        raise InputError(file, "(rows)", "at least one interval", "none")
    times: dict[str, np.ndarray] = {}
    for column in ("online_start_s", "online_end_s"):
        values = pd.to_numeric(table[column], errors="coerce").to_numpy(float)
        bad = np.flatnonzero(~np.isfinite(values) | (values < 0))
        if len(bad):
            row = int(bad[0])
            got = table[column].iloc[row]
            raise InputError(file, f"row {row + 2}.{column}", "a finite number of seconds >= 0", str(got))
        times[column] = values
    start, end = times["online_start_s"], times["online_end_s"]
    bad = np.flatnonzero(~(end > start))
    if len(bad):
        row = int(bad[0])
        raise InputError(file, f"row {row + 2}.online_end_s", f"> online_start_s ({start[row]:g})", f"{end[row]:g}")
    out = []
    for _, group in table.assign(online_start_s=start, online_end_s=end).groupby("device", sort=True):
        ordered = group.sort_values("online_start_s")
        out.append(_merged(ordered["online_start_s"].to_numpy(), ordered["online_end_s"].to_numpy()))
    return tuple(out)


def _merged(starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    merged_s: list[float] = []
    merged_e: list[float] = []
    for s, e in zip(starts, ends, strict=True):
        if merged_e and s <= merged_e[-1]:
            merged_e[-1] = max(merged_e[-1], float(e))
        else:
            merged_s.append(float(s))
            merged_e.append(float(e))
    return np.array(merged_s), np.array(merged_e)


def device_intervals(trace: Trace, slot: int) -> tuple[np.ndarray, np.ndarray]:
    """The intervals the ``slot``-th device of a fleet group replays."""
    devices = read_trace(trace.file)
    return devices[slot % len(devices)]
