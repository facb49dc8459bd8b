"""Does a calibrated profile predict this machine's steps? Calibrate on one configuration, time held-out ones
for real, and compare with the time model (:func:`fleetsim.costs.timing.compute_s`).

Calibrates as ``fleetsim calibrate`` does (the same measuring, fitting and profile writing) on MiniLM-L6 at
batch 16 × 64 tokens (or ``--calibrate``), loads the written profile, and times seven configurations —
MiniLM-L6 16×64 at ratio 0 and 0.5, 8×64, 8×128, 8×128 at 0.5, SmolLM2-135M 4×64 and 16×64 — as calibrate
times them (:func:`fleetsim.costs.measurement.measure_configs`: warm-up steps dropped, steps during which
other processes took CPU dropped, the lower quartile of the rest). Each round measures the calibration
configurations and then every checked one, so that slow and fast spells of the machine fall on both alike.
Prints one Markdown table — configuration | counted TFLOP | predicted s/step | measured s/step | error % —
then the fitted figures, the errors of a FLOP-only profile (one whole-step FLOP/s from the calibration
configuration, as hand-written profiles have) for comparison, and ``/proc/loadavg`` before and after.

    python benchmarks/calibration_check.py [--rounds 3] [--steps 5] [--patience 60] [--calibrate minilm-l6 16 64 0]

Timings on a shared machine are noisy: run it when nothing else runs (it waits out other processes' CPU
use, not a busy host under a virtual machine), and read the table with the load it prints.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

import torch

from fleetsim.app.calibrate import (
    Calibration,
    CalibrationRequest,
    fit_line,
    fit_measured,
    n_active,
    variants,
    write_profile,
)
from fleetsim.costs.host_meter import loadavg
from fleetsim.costs.measurement import Measured, load_for_calibration, measure_configs, merge_rounds
from fleetsim.costs.step_timer import StepConfig
from fleetsim.costs.timing import compute_s
from fleetsim.spec.profiles import load_profile

CHECKS: dict[str, list[tuple[int, int, float]]] = {  # model → (batch, seq, ratio)
    "minilm-l6": [(16, 64, 0.0), (16, 64, 0.5), (8, 64, 0.0), (8, 128, 0.0), (8, 128, 0.5)],
    "smollm2-135m": [(4, 64, 0.0), (16, 64, 0.0)],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--patience", type=float, default=60.0, help="seconds per configuration and round")
    parser.add_argument(
        "--calibrate", nargs=4, default=["minilm-l6", "16", "64", "0"], metavar=("MODEL", "B", "S", "R")
    )
    args = parser.parse_args()
    model, batch, seq, ratio = (
        args.calibrate[0],
        int(args.calibrate[1]),
        int(args.calibrate[2]),
        float(args.calibrate[3]),
    )
    before = loadavg()
    loaded: dict[str, Any] = {m: load_for_calibration(m, "reuters-r8", 128) for m in {model, *CHECKS}}
    bundle, _, _, max_seq = loaded[model]
    calibration_configs = variants(batch, seq, ratio, bundle.num_blocks, max_seq)
    checks = {m: [StepConfig(b, s, n_active(r, loaded[m][0].num_blocks)) for b, s, r in c] for m, c in CHECKS.items()}
    timing = {"steps": args.steps, "patience_s": args.patience}
    calibrated: list[Measured] = []
    checked: dict[str, list[Measured]] = {m: [] for m in CHECKS}
    for r in range(args.rounds):
        bundle, data, cost_model, _ = loaded[model]
        one = measure_configs(
            bundle, data, cost_model, calibration_configs, repeats=1, first_round=r, profile_steps=3, **timing
        )
        calibrated = merge_rounds(calibrated, one)
        for model_id, configs in checks.items():
            bundle, data, cost_model, _ = loaded[model_id]
            one = measure_configs(bundle, data, cost_model, configs, repeats=1, first_round=r, **timing)
            checked[model_id] = merge_rounds(checked[model_id], one)

    with tempfile.TemporaryDirectory() as tmp:
        request = CalibrationRequest(
            model, batch, seq, ratio, repeats=args.rounds, steps=args.steps, out=Path(tmp) / "p.yaml"
        )
        peak = loaded[model][2].peak_memory_bytes("adamw", calibrated[0].cost.activation_bytes)
        result = Calibration(
            request, calibrated, fit_measured(calibrated), torch.get_num_threads(), before, loadavg(), peak
        )
        write_profile(result)
        profile = load_profile(request.out)
    whole_step_flops_per_s = calibrated[0].cost.flops / calibrated[0].step_s  # a hand-written profile's one figure

    rows, flops_only = [], []
    for model_id, ratios in CHECKS.items():
        for (b, s, r), m in zip(ratios, checked[model_id], strict=True):
            cost = m.cost
            predicted = compute_s(
                profile, flops=cost.flops, memory_bytes=cost.memory_bytes, kernel_calls=cost.kernel_calls
            )
            contended = " (contended)" if m.contended else ""
            rows.append(
                f"| {model_id} {b}×{s} ratio {r:g} | {cost.flops / 1e12:.4f} | {predicted:.4f} "
                f"| {m.step_s:.4f}{contended} | {100 * (predicted / m.step_s - 1):+.1f} |"
            )
            flops_only.append(f"{100 * (cost.flops / whole_step_flops_per_s / m.step_s - 1):+.1f}")

    print("| configuration | counted TFLOP | predicted s/step | measured s/step | error % |")
    print("|---|---|---|---|---|")
    print("\n".join(rows))
    print()
    print(f"calibrated on {model} {batch}×{seq} ratio {ratio:g} ({result.threads} threads, {args.rounds} rounds)")
    print(fit_line(result.fit))
    print(
        f"FLOP-only profile ({whole_step_flops_per_s / 1e9:.1f} GFLOP/s whole step, from the calibration "
        f"configuration) errors %, same rows: {', '.join(flops_only)}"
    )
    print(f"load (1/5/15 min): before {before}, after {loadavg()}")


if __name__ == "__main__":
    main()
