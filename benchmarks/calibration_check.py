"""Does a calibrated profile predict this machine's steps? Calibrate on one configuration, then time held-out
ones for real and compare with the time model (:func:`fleetsim.costs.timing.compute_s`).

Runs ``fleetsim calibrate`` (library call) on MiniLM-L6 at batch 16 × 64 tokens (or ``--calibrate``), then
measures seven configurations — MiniLM-L6 16×64 at ratio 0 and 0.5, 8×64, 8×128, 8×128 at 0.5, SmolLM2-135M
4×64 and 16×64 — as calibrate measures (:func:`fleetsim.costs.measurement.measure_configs`: warm-up steps
dropped, steps during which other processes took CPU dropped, the lower quartile of the rest over rounds
that go round the configurations of a model), and prints one Markdown table:
configuration | counted TFLOP | predicted s/step | measured s/step | error %, then the fitted figures, the
error of a FLOP-only profile (one whole-step FLOP/s from the calibration configuration, as hand-written
profiles have) for comparison, and ``/proc/loadavg`` before and after.

    python benchmarks/calibration_check.py [--repeats 3] [--steps 5] [--patience 60] [--calibrate minilm-l6 16 64 0]

Timings on a shared machine are noisy: run it when nothing else runs (it waits out other processes' CPU
use, not a busy host under a virtual machine), and read the table with the load it prints.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch

from fleetsim.app.calibrate import CalibrationRequest, calibrate, fit_line, n_active
from fleetsim.costs.measurement import load_for_calibration, measure_configs
from fleetsim.costs.step_timer import StepConfig
from fleetsim.costs.timing import compute_s
from fleetsim.spec.profiles import load_profile

CHECKS: dict[str, list[tuple[int, int, float]]] = {  # model → (batch, seq, ratio)
    "minilm-l6": [(16, 64, 0.0), (16, 64, 0.5), (8, 64, 0.0), (8, 128, 0.0), (8, 128, 0.5)],
    "smollm2-135m": [(4, 64, 0.0), (16, 64, 0.0)],
}


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--patience", type=float, default=60.0, help="seconds per configuration and repeat")
    parser.add_argument(
        "--calibrate", nargs=4, default=["minilm-l6", "16", "64", "0"], metavar=("MODEL", "B", "S", "R")
    )
    args = parser.parse_args()
    torch.set_num_threads(torch.get_num_threads())  # the machine's cores, as calibrate uses them
    before = loadavg()
    model, batch, seq, ratio = args.calibrate
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "this_machine.yaml"
        request = CalibrationRequest(
            model,
            int(batch),
            int(seq),
            float(ratio),
            repeats=args.repeats,
            steps=args.steps,
            patience_s=args.patience,
            out=out,
        )
        calibration = calibrate(request, log=lambda line: None)
        profile = load_profile(out)
    calibrated = calibration.measured[0]
    whole_step_flops_per_s = calibrated.cost.flops / calibrated.step_s  # a hand-written profile's one figure

    rows, flops_only = [], []
    for model_id, checks in CHECKS.items():
        bundle, data, cost_model, _ = load_for_calibration(model_id, "reuters-r8", max(s for _, s, _ in checks))
        configs = [StepConfig(b, s, n_active(r, bundle.num_blocks)) for b, s, r in checks]
        measured = measure_configs(
            bundle, data, cost_model, configs, repeats=args.repeats, steps=args.steps, patience_s=args.patience
        )
        for (b, s, r), m in zip(checks, measured, strict=True):
            cost = m.cost
            predicted = compute_s(
                profile, flops=cost.flops, memory_bytes=cost.memory_bytes, kernel_calls=cost.kernel_calls
            )
            contended = " (contended)" if m.contended else ""
            rows.append(
                f"| {model_id} {b}×{s} ratio {r:g} | {cost.flops / 1e12:.4f} | {predicted:.4f} "
                f"| {m.step_s:.4f}{contended} "
                f"| {100 * (predicted / m.step_s - 1):+.1f} |"
            )
            flops_only.append(f"{100 * (cost.flops / whole_step_flops_per_s / m.step_s - 1):+.1f}")
        del bundle, data, cost_model

    print("| configuration | counted TFLOP | predicted s/step | measured s/step | error % |")
    print("|---|---|---|---|---|")
    print("\n".join(rows))
    print()
    print(f"calibrated on {model} {batch}×{seq} ratio {ratio} ({calibration.threads} threads)")
    print(fit_line(calibration.fit))
    print(
        f"FLOP-only profile ({whole_step_flops_per_s / 1e9:.1f} GFLOP/s whole step, from the calibration "
        f"configuration) errors %, same rows: {', '.join(flops_only)}"
    )
    print(f"load (1/5/15 min): before {before}, after {loadavg()}")


if __name__ == "__main__":
    main()
