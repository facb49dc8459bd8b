"""Host speed of fleetsim's executors and training precisions, side by side in one run.

1. **Executors.** A round-heavy ``phones_mixed`` (16 clients per round, MiniLM-L6, evaluation only at the
   end) run with ``inline`` at 1 and 2 threads, ``process`` with 1 and 2 workers × 1 thread and ``ray`` with
   2 workers × 1 thread. For each: delivered updates per host second over the whole training loop (worker start-up
   included) and from the second round on (steady state), the speedup over inline, and the sha256 of
   ``updates.parquet`` (identical on every executor).
2. **Overhead.** The same delivered updates replayed in the bare torch + peft loop of ``overhead.py`` at 1
   thread; each executor's core-seconds per update (training-loop host time × workers × threads / updates)
   against the bare loop's seconds per update (``process 1 x 1`` is the executor's own overhead; with 2
   workers, two busy cores also slow each other).
3. **Precision.** Step time of fp32 and bf16 (autocast) for MiniLM-L6 and SmolLM2-135M at batch 16 × 64
   and × 128 tokens, with the host's GEMM peak for each dtype (``torch.matmul`` 2048³) and the fraction of
   it each step reaches (FLOPs counted on the real model); and fp32 with every block ``torch.compile``d, with
   the first step's time (the compilation) beside the steady one.
4. ``--accuracy``: final accuracy of ``scenarios/stld_centralized.yaml`` at fp32 and bf16, 2 seeds each.

    python benchmarks/scaling.py [--rounds 4] [--skip-ray] [--accuracy]

Run it with nothing else running on the machine.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd
import torch

from fleetsim.app.loading import load_scenario
from fleetsim.app.runner import run_scenario
from fleetsim.core.updates import UpdatePlan, UpdateResult
from fleetsim.costs.counting import count_step
from fleetsim.spec.scenario import LoraSpec
from fleetsim.train import assets
from fleetsim.train.executors import Executor
from fleetsim.train.hardware import training_precision
from fleetsim.train.models import load_model

sys.path.insert(0, str(Path(__file__).resolve().parent))
from overhead import bare_side

ROOT = Path(__file__).resolve().parent.parent
PHONES = ROOT / "scenarios" / "phones_mixed.yaml"
# label → (settings, cores it occupies: workers × threads)
EXECUTORS = {
    "inline 1 thread": (["executor.kind=inline", "executor.threads_per_worker=1"], 1),
    "inline 2 threads": (["executor.kind=inline", "executor.threads_per_worker=2"], 2),
    "process 1 x 1": (["executor.kind=process", "executor.workers=1", "executor.threads_per_worker=1"], 1),
    "process 2 x 1": (["executor.kind=process", "executor.workers=2", "executor.threads_per_worker=1"], 2),
    "ray 2 x 1": (["executor.kind=ray", "executor.workers=2", "executor.threads_per_worker=1"], 2),
}


class Timed(Executor):
    """Times every round's training call of the executor it wraps."""

    def __init__(self, inner: Executor, log: list[tuple[int, float]]):
        self.inner, self.log = inner, log

    def run(
        self, plans: Sequence[UpdatePlan], states: Sequence[dict[str, torch.Tensor]], work: Sequence[float]
    ) -> list[UpdateResult]:
        start = time.perf_counter()
        out = self.inner.run(plans, states, work)
        self.log.append((len(plans), time.perf_counter() - start))
        return out

    def close(self) -> None:
        self.inner.close()


def executors(rounds: int, out: Path, skip_ray: bool) -> tuple[pd.DataFrame, pd.DataFrame]:
    common = [
        f"stop.max_rounds={rounds}",
        "stop.target_accuracy=null",
        "rounds.clients_per_round=16",
        "evaluation.every_rounds=1000",
    ]
    rows, updates = [], None
    for label, (settings, cores) in EXECUTORS.items():
        if label.startswith("ray") and (skip_ray or importlib.util.find_spec("ray") is None):
            continue
        log: list[tuple[int, float]] = []
        wrap: Callable[[Executor], Executor] = lambda inner, log=log: Timed(inner, log)  # noqa: E731
        loaded = load_scenario(PHONES, [*common, *settings, f"output_dir={out / label.split()[0]}"])
        result = run_scenario(loaded, progress=False, wrap_executor=wrap)
        frame = pd.read_parquet(result.run_dir / "updates.parquet")
        updates = frame if updates is None else updates
        n = sum(k for k, _ in log)
        loop_s = sum(s for _, s in log)
        steady_n, steady_s = sum(k for k, _ in log[1:]), sum(s for _, s in log[1:])
        rows.append(
            {
                "executor": label,
                "updates": n,
                "train_loop_s": loop_s,
                "first_round_s": log[0][1],
                "updates_per_s": n / loop_s,
                "steady_updates_per_s": steady_n / steady_s if steady_s else float("nan"),
                "core_s_per_update": loop_s * cores / n,
                "steady_core_s_per_update": steady_s * cores / steady_n if steady_n else float("nan"),
                "updates.parquet sha256": hashlib.sha256((result.run_dir / "updates.parquet").read_bytes()).hexdigest()[
                    :16
                ],
            }
        )
    table = pd.DataFrame(rows)
    base = table.iloc[0]
    table["speedup"] = table.updates_per_s / base.updates_per_s
    table["steady_speedup"] = table.steady_updates_per_s / base.steady_updates_per_s
    assert updates is not None
    return table, updates


def gemm_peak_flops(dtype: torch.dtype, n: int = 2048, repeats: int = 3) -> tuple[float, int]:
    """Best-of ``repeats`` FLOP/s of an n³ ``torch.matmul`` in ``dtype`` (2n³ FLOPs each), and the n used: a
    256³ probe first, and 2048³ only when the probe is fast enough to finish in seconds (without native bf16
    units, a bf16 matmul falls back to a reference kernel that is orders of magnitude slower)."""

    def rate(size: int) -> float:
        a, b = torch.randn(size, size).to(dtype), torch.randn(size, size).to(dtype)
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            torch.matmul(a, b)
            best = min(best, time.perf_counter() - start)
        return 2 * size**3 / best

    probe = rate(256)
    if 2 * n**3 / probe > 5.0:  # one full-size product would take more than 5 s
        return probe, 256
    return rate(n), n


def step_times(
    models: Sequence[str], seqs: Sequence[int], batch: int, steps: int, compile_blocks: bool
) -> pd.DataFrame:
    """Seconds per LoRA training step (forward + backward + AdamW), best of ``steps`` after a first one: fp32,
    bf16 autocast, and (``compile_blocks``) fp32 with every block compiled (``first_step_s`` holds the compile)."""
    gemm = {"fp32": gemm_peak_flops(torch.float32), "bf16": gemm_peak_flops(torch.bfloat16)}
    peaks = {name: value[0] for name, value in gemm.items()}
    for name, (peak, size) in gemm.items():
        print(f"GEMM peak {name}: {peak / 1e9:.2f} GFLOP/s (torch.matmul {size}^3)", flush=True)
    # bf16 steps are timed only where bf16 GEMM is at least a quarter of fp32 (else one step of the first
    # model and length says enough)
    slow_bf16 = peaks["bf16"] < 0.25 * peaks["fp32"]
    rows = []
    cpu = torch.device("cpu")
    for model_id in models:
        bundle = load_model(str(assets.model_dir(model_id)), 8, LoraSpec(), init_seed=0)
        model = bundle.model
        vocab = int(bundle.tokenizer.vocab_size)
        params = [p for p in bundle.trainable.values()]
        optimizer = torch.optim.AdamW(params, lr=1e-3)
        batches = {}
        for seq in seqs:
            g = torch.Generator().manual_seed(seq)
            batches[seq] = {
                "input_ids": torch.randint(0, vocab, (batch, seq), generator=g),
                "attention_mask": torch.ones(batch, seq, dtype=torch.long),
                "labels": torch.randint(0, 8, (batch,), generator=g),
            }
        flops = {seq: count_step(model, batch_in).flops for seq, batch_in in batches.items()}
        variants = [("fp32", False), ("bf16", False)] + ([("fp32", True)] if compile_blocks else [])
        for precision, compiled in variants:
            if precision == "bf16" and slow_bf16 and model_id != models[0]:
                continue
            if compiled:
                for block in bundle.blocks:
                    block.compile()
            for seq, batch_in in batches.items():
                if precision == "bf16" and slow_bf16 and seq != seqs[0]:
                    continue
                model.train()
                times = []
                for _ in range(
                    1 if precision == "bf16" and slow_bf16 else steps + 1
                ):  # the first is a warm-up (and, compiled, the compilation)
                    start = time.perf_counter()
                    with training_precision(cpu, precision):
                        loss = model(**batch_in).loss
                    loss.backward()
                    optimizer.step()
                    optimizer.zero_grad(set_to_none=True)
                    times.append(time.perf_counter() - start)
                best = min(times[1:] or times)
                rows.append(
                    {
                        "model": model_id,
                        "tokens": f"{batch} x {seq}",
                        "precision": precision + (" compiled" if compiled else ""),
                        "first_step_s": times[0],
                        "step_s": best,
                        "GFLOP/step": flops[seq] / 1e9,
                        "achieved_GFLOP/s": flops[seq] / best / 1e9,
                        "gemm_peak_GFLOP/s": peaks[precision] / 1e9,
                        "fraction_of_peak": flops[seq] / best / peaks[precision],
                    }
                )
                print(f"  {model_id} {batch} x {seq} {rows[-1]['precision']}: {best:.3f} s/step", file=sys.stderr)
    table = pd.DataFrame(rows)
    fp32 = table[table.precision == "fp32"].set_index(["model", "tokens"]).step_s
    table["speedup_vs_fp32"] = [fp32[(r.model, r.tokens)] / r.step_s for r in table.itertuples()]
    return table


def accuracy(out: Path) -> pd.DataFrame:
    rows = []
    for seed in (0, 1):
        for precision in ("fp32", "bf16"):
            loaded = load_scenario(
                ROOT / "scenarios" / "stld_centralized.yaml",
                [f"seed={seed}", f"training.precision={precision}", f"output_dir={out / 'acc'}"],
            )
            start = time.perf_counter()
            result = run_scenario(loaded, progress=False)
            rounds = pd.read_parquet(result.run_dir / "rounds.parquet")
            rows.append(
                {
                    "seed": seed,
                    "precision": precision,
                    "final_accuracy": float(rounds.accuracy.dropna().iloc[-1]),
                    "host_s": time.perf_counter() - start,
                }
            )
    table = pd.DataFrame(rows)
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--skip-ray", action="store_true")
    parser.add_argument("--skip-executors", action="store_true")
    parser.add_argument("--skip-precision", action="store_true")
    parser.add_argument("--skip-compile", action="store_true")
    parser.add_argument("--accuracy", action="store_true", help="also train stld_centralized at fp32 and bf16")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per precision (best of)")
    args = parser.parse_args()
    pd.set_option("display.width", 200)
    pd.set_option("display.max_columns", 30)
    fmt = lambda x: f"{x:.3f}"  # noqa: E731
    print(f"host: {os.cpu_count()} CPUs, torch {torch.__version__}, {torch.backends.cpu.get_cpu_capability()}")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        if not args.skip_executors:
            table, updates = executors(args.rounds, out, args.skip_ray)
            torch.set_num_threads(1)
            bare_s = bare_side(PHONES, updates)
            n = int((updates.outcome == "delivered").sum())
            table["vs_bare"] = table.core_s_per_update / (bare_s / n)
            table["steady_vs_bare"] = table.steady_core_s_per_update / (bare_s / n)
            print(f"\n## Executors: phones_mixed, 16 clients/round, {args.rounds} rounds, MiniLM-L6")
            print(table.to_string(index=False, float_format=fmt))
            print(f"bare torch+peft loop, 1 thread: {bare_s / n:.3f} s per update ({n} updates)")
        torch.set_num_threads(os.cpu_count() or 1)
        if not args.skip_precision:
            print(f"\n## Precision: LoRA step, batch 16, {torch.get_num_threads()} threads")
            steps = step_times(["minilm-l6", "smollm2-135m"], [64, 128], 16, args.steps, not args.skip_compile)
            print(steps.to_string(index=False, float_format=fmt))
        if args.accuracy:
            print("\n## Accuracy: stld_centralized (400 steps), fp32 vs bf16")
            acc = accuracy(out)
            print(acc.to_string(index=False, float_format=fmt))
            means = acc.groupby("precision").final_accuracy.mean()
            print(
                f"mean final accuracy: fp32 {means['fp32']:.4f}, bf16 {means['bf16']:.4f}, "
                f"difference {100 * (means['bf16'] - means['fp32']):+.2f} points"
            )


if __name__ == "__main__":
    main()
