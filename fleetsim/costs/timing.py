"""The update-time model: how long an update's phases take on a device under given conditions.

One function, used by the simulation (with an update's drawn conditions) and by the configurator (with
median conditions, to expect an update's time before choosing its configuration). DESIGN.md, cost model:

    download_s = download_bytes · 8 / (downlink_mbps · 1e6) + link_latency_s
    compute_s  = (flops / train_flops_per_s
                  + memory_bytes / memory_bytes_per_s
                  + kernel_calls · kernel_overhead_s) · straggler_factor
    upload_s   = upload_bytes · 8 / (uplink_mbps · 1e6) + link_latency_s

How a profile's figures map onto ``compute_s`` (the work figures are counted per step by
:func:`fleetsim.costs.counting.count_step` and summed over the update's steps):

* A profile **without** ``memory_bytes_per_s`` (every profile written by hand) has only
  ``train_flops_per_s``: the *whole step's* sustained FLOP/s, matrix products and everything else together;
  its time is ``flops / train_flops_per_s · straggler_factor``, exactly as before the shape-aware terms
  existed. Its ``kernel_overhead_s`` is 0 unless given.
* A profile **with** ``memory_bytes_per_s`` (written by ``fleetsim calibrate``) is an additive roofline
  (Williams et al. 2009, "Roofline", CACM 52(4), with a per-call host overhead): ``train_flops_per_s`` is
  then the FLOP/s of the matrix products alone (net of their traffic), ``memory_bytes_per_s`` the bandwidth
  of the bytes every tensor operation reads and writes (random numbers counted as compute in bytes:
  :mod:`fleetsim.costs.op_counter`), ``kernel_overhead_s`` the host time per operation dispatched beyond
  both. So longer sequences (more softmax/mask traffic per FLOP), dropout (random numbers), skinny matrix
  products (LoRA's factors) and wider models (more FLOPs per byte) each cost what this machine measured.
"""

from __future__ import annotations

from dataclasses import dataclass

from fleetsim.core.updates import Conditions
from fleetsim.spec.profiles import DeviceProfile

__all__ = ["PhaseTimes", "compute_s", "phase_times"]


@dataclass(frozen=True)
class PhaseTimes:
    """Planned durations of an update's phases, seconds. Link latency is added once per transfer."""

    download_transfer_s: float
    compute_s: float
    upload_transfer_s: float
    latency_s: float

    @property
    def download_s(self) -> float:
        return self.download_transfer_s + self.latency_s

    @property
    def upload_s(self) -> float:
        return self.upload_transfer_s + self.latency_s

    @property
    def phases(self) -> tuple[float, float, float]:
        """(download_s, compute_s, upload_s), in the order the device runs them."""
        return self.download_s, self.compute_s, self.upload_s

    @property
    def total_s(self) -> float:
        """Compute plus both transfers plus both latencies."""
        return self.compute_s + (self.download_transfer_s + self.upload_transfer_s) + 2 * self.latency_s


def compute_s(profile: DeviceProfile, *, flops: float, memory_bytes: float = 0.0, kernel_calls: float = 0.0) -> float:
    """Seconds of compute of ``flops`` (matrix products), ``memory_bytes`` of tensor traffic and
    ``kernel_calls`` operations on ``profile``, before the straggler factor (module docstring).

    Without ``memory_bytes_per_s`` the traffic is not timed apart (``train_flops_per_s`` covers the whole
    step); with the default ``kernel_overhead_s`` of 0 this is ``flops / train_flops_per_s`` exactly.
    """
    seconds = flops / profile.train_flops_per_s
    if profile.memory_bytes_per_s is not None:
        seconds += memory_bytes / profile.memory_bytes_per_s
    if profile.kernel_overhead_s:
        seconds += kernel_calls * profile.kernel_overhead_s
    return seconds


def phase_times(
    profile: DeviceProfile,
    conditions: Conditions,
    *,
    flops: float,
    download_bytes: int,
    upload_bytes: int,
    memory_bytes: float = 0.0,
    kernel_calls: float = 0.0,
) -> PhaseTimes:
    """Phase durations of an update of ``flops`` (all local steps; with ``memory_bytes`` of tensor traffic
    and ``kernel_calls`` operations, which only a shape-aware profile times) moving these bytes, on
    ``profile``."""
    work_s = compute_s(profile, flops=flops, memory_bytes=memory_bytes, kernel_calls=kernel_calls)
    return PhaseTimes(
        download_transfer_s=download_bytes * 8 / (conditions.downlink_mbps * 1e6),
        compute_s=work_s * conditions.straggler_factor,
        upload_transfer_s=upload_bytes * 8 / (conditions.uplink_mbps * 1e6),
        latency_s=profile.link_latency_s,
    )
