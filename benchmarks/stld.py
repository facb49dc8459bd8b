"""Layer dropout (STLD) on the real models: step time, activation memory and FLOPs against full depth.

For MiniLM-L6 and SmolLM2-135M at batch 16 and sequence lengths 64 and 128, runs real LoRA training steps
(forward + backward + AdamW) at dropout ratios 0, 0.25, 0.5 and 0.75 with the ``exact_k`` schedule (k =
(1−d)·L blocks per step, fractional k rounded stochastically), all in one process, and prints:

* median step time and its ratio to ratio 0 (target at 0.5: ≤ 0.60×),
* saved-activation memory per step (counted) and its ratio (target at 0.5: ≤ 0.55×),
* FLOPs counted by FlopCounterMode next to the analytic estimate of :mod:`fleetsim.costs.flops` (target: ±5%),

then builds the LLaMA-2-7B cost model on the meta device in a fresh process and prints its build time and
peak host memory (target: < 10 s, < 1 GB).

    python benchmarks/stld.py [--steps 4] [--models minilm-l6 smollm2-135m]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import pandas as pd
import torch

from fleetsim.core.schedules import DropoutConfig, sample_mask
from fleetsim.costs.flops import analytic_step_flops
from fleetsim.costs.model_counter import ModelCounter
from fleetsim.spec.scenario import LoraSpec, PartitionSpec
from fleetsim.train import assets
from fleetsim.train.blocks import BlockSwitch
from fleetsim.train.data import build_task
from fleetsim.train.models import load_model

RATIOS = (0.0, 0.25, 0.5, 0.75)
BATCH = 16


def bench_model(model_id: str, seq_lens: list[int], steps: int) -> list[dict]:
    bundle = load_model(str(assets.model_dir(model_id)), 8, LoraSpec(r=8, alpha=16), init_seed=0)
    config = bundle.model.base_model.model.config
    task = build_task(
        dataset_id="reuters-r8",
        model_key=f"bench-{model_id}",
        tokenizer=bundle.tokenizer,
        seq_len=max(seq_lens),
        n_devices=1,
        partition=PartitionSpec(kind="iid"),
        eval_max_examples=8,
        rng_partition=np.random.default_rng(0),
        rng_eval=np.random.default_rng(0),
        scenario_file="bench",
    )
    counter = ModelCounter(bundle, task.train, f"bench-{model_id}")
    switch = BlockSwitch(bundle.model, bundle.blocks)
    params = list(bundle.trainable.values())
    opt = torch.optim.AdamW(params, lr=1e-4)
    n_blocks = bundle.num_blocks
    rows = []
    for seq in seq_lens:
        for ratio in RATIOS:
            cfg = DropoutConfig(ratio=ratio, schedule="exact_k")
            masks = sample_mask(cfg, n_blocks, steps + 1, 0, np.random.default_rng(1))
            times = []
            bundle.model.train()
            for i, mask in enumerate(masks):
                idx = torch.arange(i * BATCH, (i + 1) * BATCH) % len(task.train)
                start = time.perf_counter()
                with switch.active(mask):
                    loss = bundle.model(
                        input_ids=task.train.input_ids[idx, :seq],
                        attention_mask=task.train.attention_mask[idx, :seq],
                        labels=task.train.labels[idx],
                    ).loss
                loss.backward()
                opt.step()
                opt.zero_grad(set_to_none=True)
                if i > 0:  # first step is warm-up
                    times.append(time.perf_counter() - start)
            active = masks[1:].sum(axis=1)
            counted = {int(n): counter.count(BATCH, seq, int(n)) for n in np.unique(active)}
            rows.append(
                {
                    "model": model_id,
                    "seq": seq,
                    "ratio": ratio,
                    "blocks_run": float(active.mean()),
                    "step_ms": 1000 * statistics.median(times),
                    "activation_mb": float(np.mean([counted[int(n)].activation_bytes for n in active])) / 1e6,
                    "flops_counted_g": float(np.mean([counted[int(n)].flops for n in active])) / 1e9,
                    "flops_analytic_g": float(
                        np.mean([analytic_step_flops(config, BATCH, seq, int(n), 8, 8) for n in active])
                    )
                    / 1e9,
                }
            )
    return rows


LLAMA_BUILD = """
import time
t = time.perf_counter()
from fleetsim.costs.proxies import MetaCounter
from fleetsim.costs.cost_model import CostModel
imports = time.perf_counter() - t
t = time.perf_counter()
counter = MetaCounter("llama-2-7b", "int4", num_labels=8, lora_r=8, lora_alpha=16)
step = CostModel(counter, model_blocks=32).step(16, 128)
build = time.perf_counter() - t
# VmHWM: peak resident memory of this process image (ru_maxrss would carry the parent's over exec).
rss = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM")) / 1024
print(f"{imports:.2f} {build:.2f} {rss:.0f} {counter.frozen_params} {step.flops} {step.activation_bytes}")
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4, help="timed steps per setting (after one warm-up)")
    parser.add_argument("--models", nargs="+", default=["minilm-l6", "smollm2-135m"])
    parser.add_argument("--seq", nargs="+", type=int, default=[64, 128])
    args = parser.parse_args()
    torch.set_num_threads(2)

    # First, in a fresh process: the LLaMA-2-7B cost model on the meta device.
    with tempfile.TemporaryDirectory() as cache:  # an empty cost cache: really build and count
        env = {**os.environ, "FLEETSIM_CACHE": cache}
        out = subprocess.run([sys.executable, "-c", LLAMA_BUILD], capture_output=True, text=True, check=True, env=env)
    imports_s, build_s, rss_mb, params, flops, act = out.stdout.split()
    llama_line = (
        f"LLaMA-2-7B cost model (meta device, int4 weights, LoRA r=8): build + count {float(build_s):.2f} s "
        f"(imports {float(imports_s):.2f} s), peak host memory {float(rss_mb):.0f} MB (targets < 10 s, < 1 GB); "
        f"{int(params) / 1e9:.2f} B frozen parameters, {int(flops) / 1e12:.2f} TFLOP and "
        f"{int(act) / 1e9:.2f} GB activations per step at batch 16 x 128 tokens"
    )

    rows = []
    for model_id in args.models:
        rows.extend(bench_model(model_id, args.seq, args.steps))
    table = pd.DataFrame(rows)
    full = table[table.ratio == 0.0].set_index(["model", "seq"])
    table["time_x"] = [r.step_ms / full.loc[(r.model, r.seq), "step_ms"] for r in table.itertuples()]
    table["act_x"] = [r.activation_mb / full.loc[(r.model, r.seq), "activation_mb"] for r in table.itertuples()]
    table["flops_x"] = [r.flops_counted_g / full.loc[(r.model, r.seq), "flops_counted_g"] for r in table.itertuples()]
    table["counted/analytic"] = table.flops_counted_g / table.flops_analytic_g
    pd.set_option("display.width", 200)
    print(f"batch {BATCH}, exact_k schedule, {args.steps} timed steps per setting, torch threads 2\n")
    print(table.to_string(index=False, float_format=lambda x: f"{x:.3f}"))

    half = table[table.ratio == 0.5]
    worst_time, worst_act = half.time_x.max(), half.act_x.max()
    worst_flops = (table["counted/analytic"] - 1).abs().max()
    print(
        f"\nat ratio 0.5: step time ≤ {worst_time:.3f}× (target ≤ 0.60), activations ≤ {worst_act:.3f}× "
        f"(target ≤ 0.55); counted vs analytic FLOPs: worst {100 * worst_flops:.2f}% (target ≤ 5%)"
    )
    print("\n" + llama_line)


if __name__ == "__main__":
    main()
