"""Host-time overhead of fleetsim per client update, against a bare PyTorch + peft loop.

Runs a short ``phones_mixed`` simulation (evaluation only at the end), then replays exactly the updates it
delivered — same model, shards, batch size, sequence length, local steps and FedAvg — in a plain loop
written against torch and peft only. Both sides run twice, interleaved (F B F B), and the faster of each
pair is compared. fleetsim's time is its whole host time minus model loading/tokenization and evaluation,
so the simulation, cost accounting, recording and output writing are all charged to it.

    python benchmarks/overhead.py [--rounds 4] [--scenario scenarios/phones_mixed.yaml]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch

from fleetsim.app.loading import load_scenario
from fleetsim.app.runner import run_scenario
from fleetsim.train import assets

ROOT = Path(__file__).resolve().parent.parent


def fleetsim_side(scenario: Path, rounds: int, out: Path) -> tuple[float, pd.DataFrame, dict]:
    loaded = load_scenario(
        scenario,
        [
            f"stop.max_rounds={rounds}",
            "stop.target_accuracy=null",
            "evaluation.every_rounds=1000",
            f"output_dir={out}",
        ],
    )
    result = run_scenario(loaded, progress=False)
    host = result.summary["host_time_s"]
    updates = pd.read_parquet(result.run_dir / "updates.parquet")
    return host["total"] - host["setup"] - host["evaluation"], updates, result.summary


def bare_side(scenario: Path, updates: pd.DataFrame) -> float:
    """Plain peft LoRA + AdamW + FedAvg over the same delivered updates (no fleetsim code on the hot path)."""
    from peft import LoraConfig, TaskType, get_peft_model
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    loaded = load_scenario(scenario)
    sc = loaded.scenario
    path = str(assets.model_dir(sc.model.id))
    train_df, _ = assets.load_dataset_frames(sc.dataset.id)
    names = sorted(train_df.label.unique())
    tok = AutoTokenizer.from_pretrained(path)
    enc = tok(
        train_df.text.tolist(),
        padding="max_length",
        truncation=True,
        max_length=sc.training.seq_len,
        return_tensors="pt",
    )
    labels = torch.tensor(train_df.label.map({n: i for i, n in enumerate(names)}).to_numpy())
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=len(names))
    model = get_peft_model(
        model,
        LoraConfig(
            task_type=TaskType.SEQ_CLS,
            r=sc.model.lora.r,
            lora_alpha=sc.model.lora.alpha,
            target_modules=["query", "value"],
        ),
    )
    params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    global_state = {n: p.detach().clone() for n, p in params.items()}
    n_examples = len(labels)
    delivered = updates[updates.outcome == "delivered"]

    start = time.perf_counter()
    for _, group in delivered.groupby("round", sort=True):
        states, weights = [], []
        for row in group.itertuples():
            with torch.no_grad():
                for n, p in params.items():
                    p.copy_(global_state[n])
            model.train()
            opt = torch.optim.AdamW(list(params.values()), lr=row.lr)
            g = torch.Generator().manual_seed(int(row.device_id) * 1000 + int(row.round) - 1)
            shard = torch.randperm(n_examples, generator=g)[: int(row.n_samples)]
            for _step in range(int(row.local_steps)):
                pos = torch.randperm(len(shard), generator=g)[: int(row.batch_size)]
                rows = shard[pos]
                loss = model(
                    input_ids=enc["input_ids"][rows],
                    attention_mask=enc["attention_mask"][rows],
                    labels=labels[rows],
                ).loss
                loss.backward()
                opt.step()
                opt.zero_grad(set_to_none=True)
            states.append({n: p.detach().clone() for n, p in params.items()})
            weights.append(float(row.n_samples))
        total = sum(weights)
        global_state = {n: sum(w / total * s[n] for w, s in zip(weights, states, strict=True)) for n in global_state}
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", type=Path, default=ROOT / "scenarios" / "phones_mixed.yaml")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.repeats):
            f_s, updates, summary = fleetsim_side(args.scenario, args.rounds, Path(tmp) / f"r{rep}")
            b_s = bare_side(args.scenario, updates)
            n = int((updates.outcome == "delivered").sum())
            rows.append(
                {
                    "repeat": rep,
                    "updates": n,
                    "fleetsim_s": f_s,
                    "bare_s": b_s,
                    "fleetsim_per_update_s": f_s / n,
                    "bare_per_update_s": b_s / n,
                    "ratio": f_s / b_s,
                }
            )
    table = pd.DataFrame(rows)
    pd.set_option("display.width", 160)
    print(
        f"scenario {args.scenario.name}: {args.rounds} rounds, {summary['model']}, "
        f"batch {updates.batch_size.iloc[0]}, seq {updates.seq_len.iloc[0]}, "
        f"{updates.local_steps.iloc[0]} steps/update, "
        f"torch threads {torch.get_num_threads()}"
    )
    print(table.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    best_f = table.fleetsim_per_update_s.min()
    best_b = table.bare_per_update_s.min()
    print(
        f"\nbest of {args.repeats}: fleetsim {best_f:.3f} s/update, bare loop {best_b:.3f} s/update, "
        f"ratio {best_f / best_b:.3f} (target <= 1.10)"
    )


if __name__ == "__main__":
    main()
