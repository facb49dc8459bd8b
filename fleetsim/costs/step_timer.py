"""Timing real LoRA training steps on this machine, and their peak memory, as the trainer runs them.

A timed step is the body of :class:`fleetsim.train.local.LocalTrainer`'s loop: forward with only the
step's active blocks (:class:`~fleetsim.train.blocks.BlockSwitch`), backward, optimizer step, zeroed
gradients, the loss read back. Batches are drawn from real tokenized examples (padding as in training);
each step runs ``n_active`` blocks chosen at random (the ``exact_k`` schedule's steps). Warm-up steps are
run first and not timed (first-call allocations, kernel selection).

A step is *clean* if other processes used at most ``0.03 s + 5%`` of its wall time in CPU meanwhile
(:class:`~fleetsim.costs.host_meter.CpuMeter`: on a machine whose every core ``torch`` uses, one other busy
process can make a step several times slower). After a contended step the timer waits, within a patience
budget, for the machine to be quiet again. A configuration's step time is the lower quartile of its clean
steps over all repeats (:mod:`fleetsim.costs.measurement`). Peak memory:
:func:`~fleetsim.costs.host_meter.reset_peak_rss`.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from fleetsim.costs.host_meter import CpuMeter, peak_rss_bytes, reset_peak_rss
from fleetsim.train.blocks import BlockSwitch
from fleetsim.train.data import Split
from fleetsim.train.models import ModelBundle
from fleetsim.train.optimizers import OPTIMIZERS

__all__ = ["StepConfig", "StepTiming", "is_clean", "lower_quartile", "step_runner", "time_steps", "wait_quiet"]


def lower_quartile(values: list[float]) -> float:
    """The 25th percentile (linear interpolation between order statistics, as ``numpy.percentile``): the
    statistic timings are read with (other load only slows)."""
    return float(np.percentile(values, 25))


@dataclass(frozen=True)
class StepConfig:
    """A training-step configuration to measure: rows per step, tokens per row, blocks run."""

    batch_size: int
    seq_len: int
    n_active: int

    @property
    def label(self) -> str:
        return f"{self.batch_size}×{self.seq_len}, {self.n_active} blocks"


@dataclass(frozen=True)
class StepTiming:
    """Wall-clock times of timed training steps of one configuration, and the memory they used."""

    batch_size: int
    seq_len: int
    n_active: int  # blocks run per step
    step_s: tuple[float, ...]  # each timed step, seconds (warm-up and re-warming steps excluded)
    other_cpu_s: tuple[float, ...]  # CPU seconds other processes used during each timed step
    rss_before_bytes: int  # resident set before the steps
    rss_peak_bytes: int  # resident high-water mark during the steps (or of the process; see the source)
    peak_memory_source: str

    @property
    def median_s(self) -> float:
        return statistics.median(self.step_s)

    @property
    def clean_s(self) -> list[float]:
        """The timed steps during which the rest of the machine stayed (almost) idle."""
        return [t for t, other in zip(self.step_s, self.other_cpu_s, strict=True) if is_clean(t, other)]


def time_steps(
    bundle: ModelBundle,
    data: Split,
    *,
    batch_size: int,
    seq_len: int,
    n_active: int,
    steps: int,
    warmup: int = 2,
    seed: int = 0,
    patience_s: float = 0.0,
    optimizer: str = "adamw",
    lr: float = 1e-3,
) -> StepTiming:
    """Run ``warmup`` untimed steps of ``bundle`` on rows of ``data``, then time steps until ``steps`` of them
    are clean — or, once ``steps`` are timed, until ``patience_s`` is spent (waiting for the machine to be
    quiet again after a contended step, then one untimed step, before the next timed one).

    The model's trainable state is changed by the steps (callers that care keep a copy).
    """
    config = StepConfig(batch_size, seq_len, n_active)
    step = step_runner(bundle, data, config, np.random.default_rng(seed), optimizer, lr)
    before, source = reset_peak_rss()
    for _ in range(warmup):
        step()
    times: list[float] = []
    others: list[float] = []
    meter = CpuMeter()
    deadline = time.perf_counter() + patience_s
    while sum(map(is_clean, times, others)) < steps:
        meter.other_cpu_s()
        times.append(step())
        others.append(meter.other_cpu_s())
        if is_clean(times[-1], others[-1]):
            continue
        if time.perf_counter() >= deadline and len(times) >= steps:
            break
        if wait_quiet(meter, deadline):
            step()  # warm again after the pause
    peak = peak_rss_bytes(source)
    return StepTiming(batch_size, seq_len, n_active, tuple(times), tuple(others), before, peak, source)


def is_clean(step_s: float, other_cpu_s: float) -> bool:
    """Whether other processes used at most 0.03 s + 5% of the step's wall time in CPU during it."""
    return other_cpu_s <= 0.03 + 0.05 * step_s


def wait_quiet(meter: CpuMeter, deadline: float, window_s: float = 0.25) -> bool:
    """Sleep until other processes use under 5% of a core over a window, or the deadline; whether it waited."""
    waited = False
    while time.perf_counter() + window_s < deadline:
        meter.other_cpu_s()
        time.sleep(window_s)
        waited = True
        if meter.other_cpu_s() < 0.05 * window_s:
            break
    return waited


def step_runner(
    bundle: ModelBundle,
    data: Split,
    config: StepConfig,
    rng: np.random.Generator,
    optimizer: str = "adamw",
    lr: float = 1e-3,
) -> Callable[[], float]:
    """A function that runs one training step (the trainer's loop body) and returns its wall time, seconds."""
    batch_size, seq_len, n_active = config.batch_size, config.seq_len, config.n_active
    n_blocks = bundle.num_blocks
    switch = BlockSwitch(bundle.model, bundle.blocks)
    model = bundle.model
    params = [p for p in bundle.trainable.values() if p.requires_grad]
    opt = OPTIMIZERS[optimizer].build(params, lr, 0.0)
    model.train()

    def step() -> float:
        rows = torch.as_tensor(rng.choice(len(data), size=batch_size, replace=batch_size > len(data)))
        mask = np.zeros(n_blocks, dtype=bool)
        mask[rng.choice(n_blocks, size=n_active, replace=False)] = True
        start = time.perf_counter()
        with switch.active(mask):
            out = model(
                input_ids=data.input_ids[rows, :seq_len],
                attention_mask=data.attention_mask[rows, :seq_len],
                labels=bundle.objective.targets(data, rows, seq_len),
            )
        out.loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        float(out.loss.detach())
        return time.perf_counter() - start

    return step
