"""Deriving a device's compute figures from measured training steps (the shape-aware model of
:mod:`fleetsim.costs.timing`).

Each measured configuration brings its counted work per step (FLOPs, bytes moved — by matrix products and
by the rest — and kernel calls: :func:`fleetsim.costs.counting.count_step`), its step time
(:mod:`fleetsim.costs.step_timer`) and where profiled steps spent their time
(:mod:`fleetsim.costs.op_profile`). Pooled over the configurations:

    memory_bytes_per_s = Σ (memory_bytes − matmul_bytes) / Σ memory_s   (the non-matmul operations' time)
    train_flops_per_s  = Σ flops / Σ (matmul_s − matmul_bytes / B)      (matrix products, net of traffic)

both then multiplied by one factor, so that the configurations' pooled predicted time equals their pooled
measured (unprofiled) step time: the profiler's split says what share of a step each kind of work takes,
but its own recording lengthens profiled steps (by about 8% here), so it cannot say how long a step takes.
``kernel_overhead_s`` is measured apart: the host time per operation of a chain of operations on tensors
too small to take any time themselves, with autograd
(:func:`fleetsim.costs.op_profile.dispatch_overhead_samples`), timed beside every configuration in every
round and taken, like step times, as the lower quartile (the fastest run alone swung 6.7–13 µs from run to
run). So each figure is a measured rate of its own kind of work. At least half of the matrix products' time
goes to their FLOPs: in tiny steps the weights stay in cache and move faster than the non-matmul bandwidth,
which would otherwise leave no time (or less than none) for the FLOPs.

What a step spends outside these (Python, autograd's engine, the optimizer's loop) is not rated apart: the
pooled factor spreads it over FLOPs and bytes. Taken as overhead per operation instead it came to 15–78 µs
per call on MiniLM-L6 from run to run on a shared 2-core machine and over-charged SmolLM2-135M's many cheap
operations (its 4 × 64 steps by up to 16%); the tiny-operation chain predicts both models' small steps
better.

A regression of step times on the three counts (non-negative least squares over variants of one model)
was tried first and rejected: the counts of one model's variants are nearly collinear, and the fitted rate
swung from 64 to 530 GFLOP/s with the choice of variants, predicting SmolLM2-135M's steps from
MiniLM-L6's 10–44% off.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ComputeFit", "Sample", "fit_compute"]


@dataclass(frozen=True)
class Sample:
    """One measured configuration, per step: counted work, measured time and its profiled split."""

    label: str
    flops: float
    memory_bytes: float  # all data-moving operations, matrix products included
    kernel_calls: float
    step_s: float  # measured (unprofiled) time
    matmul_s: float  # profiled time in matrix products
    memory_s: float  # profiled time in other data-moving operations
    matmul_bytes: float = 0.0  # the part of memory_bytes that matrix products move


@dataclass(frozen=True)
class ComputeFit:
    """The figures; ``memory_bytes_per_s`` is None when no measured step moved data outside matmuls."""

    train_flops_per_s: float
    memory_bytes_per_s: float | None
    kernel_overhead_s: float

    def predict_s(self, flops: float, memory_bytes: float, kernel_calls: float) -> float:
        """Seconds of one step of this work (the formula of :func:`fleetsim.costs.timing.compute_s`)."""
        seconds = flops / self.train_flops_per_s + kernel_calls * self.kernel_overhead_s
        if self.memory_bytes_per_s is not None:
            seconds += memory_bytes / self.memory_bytes_per_s
        return seconds

    def relative_errors(self, samples: list[Sample]) -> list[float]:
        """(predicted − measured) / measured of each sample."""
        return [self.predict_s(s.flops, s.memory_bytes, s.kernel_calls) / s.step_s - 1 for s in samples]


def fit_compute(samples: list[Sample], kernel_overhead_s: float = 0.0) -> ComputeFit:
    """The figures pooled over ``samples`` (module docstring), with ``kernel_overhead_s`` as measured.

    Raises ``ValueError`` without samples, or when no matrix product was counted and timed.
    """
    if not samples:
        raise ValueError("no measured configurations")
    flops, matmul_s = sum(s.flops for s in samples), sum(s.matmul_s for s in samples)
    if flops <= 0 or matmul_s <= 0:
        raise ValueError(f"no matrix products to rate: {flops:g} FLOPs counted in {matmul_s:g} s profiled")
    mm_bytes = sum(s.matmul_bytes for s in samples)
    other_bytes, memory_s = sum(s.memory_bytes for s in samples) - mm_bytes, sum(s.memory_s for s in samples)
    bandwidth = other_bytes / memory_s if other_bytes > 0 and memory_s > 0 else None
    traffic_s = mm_bytes / bandwidth if bandwidth is not None else 0.0
    split = ComputeFit(flops / max(matmul_s - traffic_s, matmul_s / 2), bandwidth, kernel_overhead_s)
    # The split says what share each kind of work takes; the unprofiled steps say how long they take.
    work_s = sum(split.predict_s(s.flops, s.memory_bytes, 0.0) for s in samples)
    left_s = sum(s.step_s for s in samples) - kernel_overhead_s * sum(s.kernel_calls for s in samples)
    if left_s <= 0:  # the overhead per call alone is longer than the steps: leave the split's rates
        return split
    scale = work_s / left_s
    return ComputeFit(
        split.train_flops_per_s * scale,
        None if bandwidth is None else bandwidth * scale,
        kernel_overhead_s,
    )
