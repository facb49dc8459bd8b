"""Where a training step's time goes on this machine: matrix products, other tensor work, the rest.

``torch.profiler`` records the self time of every aten operation of a few real training steps (the loop of
:mod:`fleetsim.costs.step_timer`); the time is split the way the shape-aware compute model
(:mod:`fleetsim.costs.timing`) splits the work:

* ``matmul_s`` — operations with a FLOP formula (:func:`~fleetsim.costs.op_counter.is_matmul`), which the
  model times by ``flops / train_flops_per_s``;
* ``memory_s`` — the other operations that move data (:func:`~fleetsim.costs.op_counter.moves_data`),
  timed by ``memory_bytes / memory_bytes_per_s``;
* the remainder of the wall time (views, Python, autograd's bookkeeping, the optimizer's loop) is host
  overhead; :func:`dispatch_overhead_s` measures its part per operation dispatched (``kernel_overhead_s``).

Self times are those of the calling thread, intra-op threads included (an operation returns when its
parallel work is done). The profiled steps are repeated, within a patience budget, while other processes
took CPU during them (:func:`fleetsim.costs.step_timer.is_clean`).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from torch.profiler import ProfilerActivity, profile

import fleetsim.costs.counting  # noqa: F401  (registers the FLOP formulas of CPU attention)
from fleetsim.costs.host_meter import CpuMeter
from fleetsim.costs.op_counter import OpCounter, is_matmul, moves_data
from fleetsim.costs.step_timer import StepConfig, is_clean, lower_quartile, step_runner, wait_quiet
from fleetsim.train.data import Split
from fleetsim.train.models import ModelBundle

__all__ = ["TimeSplit", "dispatch_overhead_s", "dispatch_overhead_samples", "profile_split"]


@dataclass(frozen=True)
class TimeSplit:
    """Seconds per step spent in matrix products and in other data-moving operations, and the wall time
    per step, of profiled steps (the profiler's own cost included in the wall time)."""

    matmul_s: float
    memory_s: float
    wall_s: float
    clean: bool  # no other process took CPU while they ran


def profile_split(
    bundle: ModelBundle, data: Split, config: StepConfig, *, steps: int, warmup: int = 2, patience_s: float = 0.0
) -> TimeSplit:
    """Profile ``steps`` training steps of ``config`` (after ``warmup`` untimed ones) and split their time."""
    step = step_runner(bundle, data, config, np.random.default_rng(1))
    for _ in range(warmup):
        step()
    meter = CpuMeter()
    deadline = time.perf_counter() + patience_s
    while True:
        meter.other_cpu_s()
        start = time.perf_counter()
        with _without_tracing_notices(), profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(steps):
                step()
        wall_s = time.perf_counter() - start
        clean = is_clean(wall_s, meter.other_cpu_s())
        if clean or not wait_quiet(meter, deadline):
            break
        step()  # warm again after the pause
    matmul_us = memory_us = 0.0
    for event in prof.key_averages():
        kind = _kind(event.key)
        if kind == "matmul":
            matmul_us += event.self_cpu_time_total
        elif kind == "memory":
            memory_us += event.self_cpu_time_total
    return TimeSplit(matmul_us / 1e6 / steps, memory_us / 1e6 / steps, wall_s / steps, clean)


@contextmanager
def _without_tracing_notices() -> Iterator[None]:
    """Drop the ``USDT: … profiler_start/stop`` lines that libtorch writes to file descriptor 2 each time a
    profiler starts and stops; anything else written to standard error meanwhile is passed on."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as caught:
        os.dup2(caught.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            caught.seek(0)
            kept = [line for line in caught.read().splitlines(keepends=True) if not line.startswith(b"USDT:")]
            if kept:
                os.write(2, b"".join(kept))


def _kind(event_name: str) -> str:
    """ "matmul", "memory" or "overhead" for a profiler event (only ``aten::`` operations do tensor work)."""
    if not event_name.startswith("aten::"):
        return "overhead"
    packet = getattr(torch.ops.aten, event_name.removeprefix("aten::"), None)
    if packet is None:
        return "overhead"
    if is_matmul(packet):
        return "matmul"
    return "memory" if moves_data(packet) else "overhead"


def dispatch_overhead_samples(chain_length: int = 200, repeats: int = 10) -> list[float]:
    """Host seconds per tensor operation, once per run of ``repeats``: forward and backward of a chain of
    multiply-adds on 8 numbers (autograd recording, dispatch, a kernel with nothing to do), divided by the
    operations it dispatches (:class:`~fleetsim.costs.op_counter.OpCounter`)."""
    x = torch.ones(8, requires_grad=True)

    def chain() -> None:
        y = x
        for _ in range(chain_length):
            y = y * 1.0001 + 0.5
        y.sum().backward()
        x.grad = None

    with OpCounter() as ops:
        chain()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        chain()
        samples.append((time.perf_counter() - start) / ops.kernel_calls)
    return samples


def dispatch_overhead_s(chain_length: int = 200, repeats: int = 60) -> float:
    """The lower quartile of :func:`dispatch_overhead_samples`: the statistic step times are measured with
    (:mod:`fleetsim.costs.measurement`)."""
    return lower_quartile(dispatch_overhead_samples(chain_length, repeats))
