"""What the host did while steps were timed — CPU time taken by *other* processes, resident-memory peaks,
load — and what it is (CPU name, available memory).

Timing on a shared machine is only as good as the machine was idle: with ``torch`` using every core, one
other busy process stalls each parallel region and a step can take several times longer. So each timed step
also reads how much CPU the rest of the machine used meanwhile:

    other_cpu_s = Δ(busy time of all CPUs, /proc/stat: user + nice + system + irq + softirq)
                  − Δ(this process's user + system time, os.times())

in clock ticks of ``SC_CLK_TCK`` (usually 10 ms). Where ``/proc`` is missing it reads 0 (no filtering).

Peak memory is the resident-set high-water mark (Linux ``VmHWM``), reset before the steps by writing ``5``
to ``/proc/self/clear_refs``; where that is refused, the whole process's ``getrusage`` peak.
"""

from __future__ import annotations

import os
import platform
import resource
from pathlib import Path

__all__ = ["PEAK_SOURCE_HWM", "CpuMeter", "cpu_name", "loadavg", "meminfo_gib", "peak_rss_bytes", "reset_peak_rss"]

_PROC = Path("/proc")
PEAK_SOURCE_HWM = "VmHWM after resetting it via /proc/self/clear_refs (resident set)"
_PEAK_SOURCE_RUSAGE = "getrusage ru_maxrss (the whole process: /proc/self/clear_refs was refused)"


class CpuMeter:
    """Reads, between two calls of :meth:`other_cpu_s`, the CPU seconds other processes used."""

    def __init__(self) -> None:
        self._tick_s = 1 / os.sysconf("SC_CLK_TCK")
        self._last = self._sample()

    def _sample(self) -> tuple[float, float]:
        mine = os.times()
        return _busy_ticks() * self._tick_s, mine.user + mine.system

    def other_cpu_s(self) -> float:
        """CPU seconds used by everything but this process since the last call (or construction)."""
        now = self._sample()
        total, mine = now[0] - self._last[0], now[1] - self._last[1]
        self._last = now
        return max(0.0, total - mine)


def _busy_ticks() -> int:
    try:
        fields = (_PROC / "stat").read_text().split("\n", 1)[0].split()
    except OSError:
        return 0
    user, nice, system, _idle, _iowait, irq, softirq = (int(v) for v in fields[1:8])
    return user + nice + system + irq + softirq


def loadavg() -> str:
    """The 1, 5 and 15 minute load averages, as ``/proc/loadavg`` has them ("unknown" without it)."""
    try:
        return " ".join((_PROC / "loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def _status_kib(field: str) -> int | None:
    try:
        for line in (_PROC / "self" / "status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def reset_peak_rss() -> tuple[int, str]:
    """Reset the resident high-water mark if the OS allows; (resident bytes now, how the peak is read)."""
    rss = (_status_kib("VmRSS") or 0) * 1024
    try:
        (_PROC / "self" / "clear_refs").write_text("5")
    except OSError:
        return rss, _PEAK_SOURCE_RUSAGE
    return rss, PEAK_SOURCE_HWM


def peak_rss_bytes(source: str) -> int:
    """The resident high-water mark, read as ``source`` (from :func:`reset_peak_rss`) says."""
    hwm = _status_kib("VmHWM") if source == PEAK_SOURCE_HWM else None
    if hwm is not None:
        return hwm * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def meminfo_gib(field: str) -> float:
    """A ``/proc/meminfo`` figure in GiB (``MemAvailable``: what a new process may use); the physical
    memory where ``/proc`` is missing."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo``), or what ``platform`` says."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
