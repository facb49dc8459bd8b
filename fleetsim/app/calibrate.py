"""``fleetsim calibrate``: measure this machine's training steps and write a device profile of it.

The requested configuration (model, batch, sequence length, layer-dropout ratio) and a few variants of it —
half the batch, twice the sequence at half the batch, the other dropout ratio — are trained for real here
with ``torch``'s threads as set (all cores by default), in rounds
(:func:`fleetsim.costs.measurement.measure_configs`: warm-up steps dropped, steps during which other
processes took CPU dropped, the lower quartile of the rest); a few more steps of each are profiled
(:mod:`fleetsim.costs.op_profile`) and each step's work is counted as the simulation counts it
(:class:`~fleetsim.costs.cost_model.CostModel`). The three figures of the shape-aware compute model
(:mod:`fleetsim.costs.timing`) follow: ``train_flops_per_s`` and ``memory_bytes_per_s`` from the time the
profiler finds in matrix products and in the other operations, ``kernel_overhead_s`` from a chain of tiny
operations (:func:`fleetsim.costs.calibration.fit_compute`). The profile cites the measurement; figures
calibrate does not measure (links, availability, power) are placeholders marked ``E:``.
"""

from __future__ import annotations

import datetime
import platform
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from fleetsim.core.errors import InputError
from fleetsim.spec.profiles import FIGURE_FIELDS

__all__ = [
    "Calibration",
    "CalibrationRequest",
    "calibrate",
    "fit_measured",
    "results_table",
    "variants",
    "write_profile",
]


@dataclass(frozen=True)
class CalibrationRequest:
    """What to calibrate on, validated by :meth:`check` (one-line :class:`InputError` per bad argument)."""

    model: str
    batch_size: int
    seq_len: int
    ratio: float = 0.0
    dataset: str = "reuters-r8"
    repeats: int = 3
    steps: int = 5
    warmup: int = 2
    patience_s: float = 30.0  # per configuration and repeat: waiting out other load (step_timer.time_steps)
    out: Path = Path("profiles/this_machine.yaml")
    force: bool = False
    name: str | None = None

    def check(self) -> None:
        """Raise :class:`InputError` naming the first bad argument; leaves no file behind."""
        from fleetsim.train import assets
        from fleetsim.train.models import max_positions

        for flag, value in (("--batch", self.batch_size), ("--seq", self.seq_len), ("--repeats", self.repeats)):
            if value < 1:
                raise InputError(flag, "", "a whole number >= 1", value)
        if self.steps < 1:
            raise InputError("--steps", "", "a whole number >= 1", self.steps)
        if self.warmup < 0:
            raise InputError("--warmup", "", "a whole number >= 0", self.warmup)
        if self.patience_s < 0:
            raise InputError("--patience", "", "seconds >= 0", self.patience_s)
        if not 0.0 <= self.ratio < 1.0:
            raise InputError("--ratio", "", "a layer-dropout ratio in [0, 1)", self.ratio)
        assets.check_model_id(self.model, "--model", "")
        longest = max_positions(assets.model_dir(self.model))
        if longest is not None and self.seq_len > longest:
            raise InputError("--seq", "", f"at most {longest} (the model's longest input)", self.seq_len)
        assets.check_dataset_id(self.dataset, "--dataset", "")
        if self.out.suffix not in (".yaml", ".yml"):
            raise InputError("--out", "", "a .yaml file path", str(self.out))
        if self.out.exists() and not self.force:
            raise InputError("--out", "", "a file that does not exist yet (or --force)", str(self.out))
        from fleetsim.app.loading import check_output

        check_output("--out", self.out, folder=False)


def n_active(ratio: float, n_blocks: int) -> int:
    """Blocks a step runs at dropout ``ratio``: round((1 − ratio) · n_blocks), at least 1."""
    return max(1, round((1 - ratio) * n_blocks))


def variants(batch_size: int, seq_len: int, ratio: float, n_blocks: int, max_seq: int | None) -> list[Any]:
    """The requested configuration first, then variants that move the work mix apart: half the batch (same
    kernel calls, half the FLOPs and traffic), twice the sequence (more traffic per FLOP: attention scores),
    and the other dropout ratio (0.5, or 0 when 0.5 was asked for; fewer calls and both works)."""
    from fleetsim.costs.step_timer import StepConfig

    n = n_active(ratio, n_blocks)
    configs = [StepConfig(batch_size, seq_len, n)]
    if batch_size >= 2:
        configs.append(StepConfig(batch_size // 2, seq_len, n))
    longer = seq_len * 2 if max_seq is None else min(seq_len * 2, max_seq)
    configs.append(StepConfig(max(1, batch_size // 2), longer if longer > seq_len else max(1, seq_len // 2), n))
    other = n_active(0.5 if ratio != 0.5 else 0.0, n_blocks)
    configs.append(StepConfig(batch_size, seq_len, other if other != n else max(1, n // 2)))
    return list(dict.fromkeys(configs))


@dataclass(frozen=True)
class Calibration:
    """What a calibration measured and fitted (the profile is written from it)."""

    request: CalibrationRequest
    measured: list[Any]  # fleetsim.costs.measurement.Measured, the requested configuration first
    fit: Any  # fleetsim.costs.calibration.ComputeFit
    threads: int  # torch threads the steps ran on
    load_before: str  # /proc/loadavg (1, 5, 15 min) before and after the measurement
    load_after: str
    predicted_peak_bytes: int  # the cost model's peak memory of the requested configuration


def calibrate(request: CalibrationRequest, log: Callable[[str], None] = print) -> Calibration:
    """Measure and fit on this machine, then write the profile to ``request.out`` (atomically).

    Raises :class:`InputError` for a bad request before anything is loaded or written.
    """
    import torch

    from fleetsim.costs.host_meter import loadavg
    from fleetsim.costs.measurement import load_for_calibration, measure_configs

    request.check()
    bundle, data, cost_model, max_seq = load_for_calibration(request.model, request.dataset, 2 * request.seq_len)
    configs = variants(request.batch_size, request.seq_len, request.ratio, bundle.num_blocks, max_seq)
    load_before = loadavg()
    log(f"{request.model}: {len(configs)} configurations × {request.repeats} rounds, load {load_before}")
    measured = measure_configs(
        bundle,
        data,
        cost_model,
        configs,
        repeats=request.repeats,
        steps=request.steps,
        warmup=request.warmup,
        patience_s=request.patience_s,
        profile_steps=min(request.steps, 3),
        log=log,
    )
    fit = fit_measured(measured)
    peak = cost_model.peak_memory_bytes("adamw", measured[0].cost.activation_bytes)
    result = Calibration(request, measured, fit, torch.get_num_threads(), load_before, loadavg(), peak)
    write_profile(result)
    return result


def fit_measured(measured: list[Any]) -> Any:
    """The figures (:func:`fleetsim.costs.calibration.fit_compute`) from profiled measurements
    (:class:`fleetsim.costs.measurement.Measured`), with the per-operation overhead timed beside them (the
    lower quartile of its samples, as step times; measured now if they have none)."""
    from fleetsim.costs.calibration import Sample, fit_compute
    from fleetsim.costs.measurement import lower_quartile
    from fleetsim.costs.op_profile import dispatch_overhead_s

    samples = [
        Sample(
            m.config.label,
            m.cost.flops,
            m.cost.memory_bytes,
            m.cost.kernel_calls,
            m.step_s,
            m.split.matmul_s,
            m.split.memory_s,
            m.cost.matmul_bytes,
        )
        for m in measured
    ]
    overheads = [o for m in measured for o in m.overheads_s]
    return fit_compute(samples, lower_quartile(overheads) if overheads else dispatch_overhead_s())


def results_table(result: Calibration) -> str:
    """Markdown table of the measured configurations against the fitted model, then the fitted figures."""
    lines = [
        "| configuration | counted TFLOP | moved GB | kernel calls | measured s/step | profiled matmul / other s "
        "| fitted s/step | error % |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for m in result.measured:
        cost, split = m.cost, m.split
        predicted = result.fit.predict_s(cost.flops, cost.memory_bytes, cost.kernel_calls)
        lines.append(
            f"| {m.config.label} | {cost.flops / 1e12:.4f} | {cost.memory_bytes / 1e9:.3f} | {cost.kernel_calls} "
            f"| {m.step_s:.4f}{'' if not m.contended else ' (contended)'} "
            f"| {split.matmul_s:.4f} / {split.memory_s:.4f} | {predicted:.4f} "
            f"| {100 * (predicted / m.step_s - 1):+.1f} |"
        )
    return "\n".join(
        [*lines, "", fit_line(result.fit), f"load (1/5/15 min): {result.load_before} → {result.load_after}"]
    )


def fit_line(fit: Any) -> str:
    """The fitted figures in one line."""
    bandwidth = "unset" if fit.memory_bytes_per_s is None else f"{fit.memory_bytes_per_s / 1e9:.2f} GB/s"
    return (
        f"fitted: train_flops_per_s {fit.train_flops_per_s / 1e9:.1f} GFLOP/s, memory_bytes_per_s {bandwidth}, "
        f"kernel_overhead_s {fit.kernel_overhead_s * 1e6:.1f} µs"
    )


def profile_document(result: Calibration) -> dict[str, Any]:
    """The device profile of this machine, every figure cited (measured ``M:``, placeholder ``E:``)."""
    import torch

    from fleetsim.costs.host_meter import cpu_name, meminfo_gib

    req, fit, first = result.request, result.fit, result.measured[0]
    when = datetime.datetime.now().astimezone().isoformat(timespec="minutes")
    runs = "; ".join(f"{m.config.label} {m.step_s:.4f} s" for m in result.measured)  # lower quartiles
    how = (
        f"M: fleetsim calibrate --model {req.model} --batch {req.batch_size} --seq {req.seq_len} "
        f"--ratio {req.ratio:g}, {when}, torch {torch.__version__}, {result.threads} threads, "
        f"load {result.load_before} → {result.load_after}; step times ({runs}) and torch.profiler's split "
        "of them (fleetsim.costs.calibration)"
    )
    fitted = {"train_flops_per_s": float(f"{fit.train_flops_per_s:.4g}")}
    sources = {"train_flops_per_s": f"{how}: FLOPs / time in matrix products, net of their traffic"}
    if fit.memory_bytes_per_s is not None:
        fitted["memory_bytes_per_s"] = float(f"{fit.memory_bytes_per_s:.4g}")
        sources["memory_bytes_per_s"] = f"{how}: bytes / time of the other data-moving operations"
    fitted["kernel_overhead_s"] = float(f"{fit.kernel_overhead_s:.4g}")
    sources["kernel_overhead_s"] = f"{how}: host time per operation of a chain of tiny operations with autograd"
    timing = first.timings[0]
    placeholder = "E: not measured by fleetsim calibrate; a placeholder to edit"
    return {
        "name": req.name or f"This machine ({cpu_name()}, {result.threads} threads)",
        "tier": "calibrated",
        "description": (
            f"Calibrated on {platform.node()} with {req.model}. Its {first.config.label} steps peaked at "
            f"{timing.rss_peak_bytes / 2**20:.0f} MiB resident, {timing.rss_before_bytes / 2**20:.0f} MiB before "
            f"them ({timing.peak_memory_source}); the cost model puts the update's peak memory at "
            f"{result.predicted_peak_bytes / 2**20:.0f} MiB (weights, LoRA state, activations)."
        ),
        "usable_memory_gib": round(meminfo_gib("MemAvailable"), 2),
        **fitted,
        "training_stack": (
            f"measured: fleetsim's LoRA training loop (fp32, AdamW), torch {torch.__version__}, "
            f"{result.threads} threads, {platform.machine()} CPU"
        ),
        "downlink_mbps": {"dist": "constant", "value": 100.0},
        "uplink_mbps": {"dist": "constant", "value": 100.0},
        "link_latency_s": 0.0,
        "availability": None,
        "failure_prob_per_update": 0.0,
        "straggler_sigma": 0.0,
        "train_power_w": 15.0,
        "radio_power_w": 1.0,
        "sources": {
            "usable_memory_gib": f"M: MemAvailable in /proc/meminfo at calibration, {when}",
            **sources,
            **{k: placeholder for k in FIGURE_FIELDS if k not in ("usable_memory_gib", "train_flops_per_s")},
        },
    }


def write_profile(result: Calibration) -> None:
    """Validate the profile of ``result``, then write it to its request's ``out`` atomically (a temporary
    file renamed)."""
    from fleetsim.spec.profiles import DeviceProfile
    from fleetsim.spec.schema import validate

    path, document = result.request.out, profile_document(result)
    validate(DeviceProfile, document, path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    text = yaml.dump(document, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=120)
    tmp.write_text("# Written by fleetsim calibrate.\n" + text)
    tmp.replace(path)


class _Dumper(yaml.SafeDumper):
    """Writes large and small figures as 1.1470e+11, not 114700000000.0 (YAML reads both as floats)."""


def _float(dumper: yaml.SafeDumper, value: float) -> yaml.Node:
    if value != 0 and not 1e-3 <= abs(value) < 1e6:
        return dumper.represent_scalar("tag:yaml.org,2002:float", f"{value:.4e}")
    return dumper.represent_float(value)


_Dumper.add_representer(float, _float)
