"""Build a run from a loaded scenario, simulate it, and write its run directory.

This is the composition root: it wires assets, data, model, costs, fleet, strategy, executor, evaluator
and recorder together, and is the only place that knows all of them.
"""

from __future__ import annotations

import platform
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

from fleetsim import __version__
from fleetsim.app.loading import LoadedScenario
from fleetsim.core.rng import Streams
from fleetsim.core.updates import TrainConfig
from fleetsim.costs.cost_model import CostModel, ModelCounter
from fleetsim.io.recorder import Recorder, write_run_dir
from fleetsim.policy.strategies import StrategyContext, make_strategy
from fleetsim.sim.simulation import Simulation, SimulationState
from fleetsim.train import assets
from fleetsim.train.data import Task, build_task
from fleetsim.train.evaluation import Evaluator
from fleetsim.train.executors import Executor, InlineExecutor
from fleetsim.train.local import LocalTrainer
from fleetsim.train.models import ModelBundle, load_model
from fleetsim.world.fleet import Fleet

__all__ = ["RunResult", "run_scenario"]


@dataclass(frozen=True)
class RunResult:
    run_dir: Path
    summary: dict[str, Any]


def _versions() -> dict[str, str]:
    out = {"fleetsim": __version__, "python": platform.python_version()}
    for pkg in ("torch", "transformers", "peft", "simpy", "numpy", "pandas"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "missing"
    return out


def _run_dir(loaded: LoadedScenario, run_dir: Path | None) -> Path:
    if run_dir is not None:
        if run_dir.exists():
            raise FileExistsError(f"run directory {run_dir} already exists")
        return run_dir
    root = Path(loaded.scenario.output_dir)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    candidate = root / f"{loaded.scenario.name}-{stamp}"
    n = 1
    while candidate.exists() or candidate.with_name(candidate.name + ".partial").exists():
        n += 1
        candidate = root / f"{loaded.scenario.name}-{stamp}-{n}"
    return candidate


def run_scenario(
    loaded: LoadedScenario,
    *,
    run_dir: Path | None = None,
    progress: bool = True,
    wrap_executor: Callable[[Executor], Executor] | None = None,
    label: str | None = None,
) -> RunResult:
    """Simulate ``loaded`` and write its run directory; return the directory and the summary.

    ``wrap_executor`` may wrap the executor that trains delivered updates (instrumentation, tests).
    """
    host_start = time.perf_counter()
    sc = loaded.scenario
    target_dir = _run_dir(loaded, run_dir)
    streams = Streams(sc.seed)
    train_frame, _ = assets.load_dataset_frames(sc.dataset.id)
    num_labels = int(train_frame.label.nunique())
    model_path = assets.model_dir(sc.model.id)
    bundle = load_model(str(model_path), num_labels, sc.model.lora, streams.integer_seed("model-init"))
    task = build_task(
        dataset_id=sc.dataset.id,
        model_key=str(model_path.resolve()),
        tokenizer=bundle.tokenizer,
        seq_len=sc.training.seq_len,
        n_devices=sc.fleet_size,
        partition=sc.dataset.partition,
        eval_max_examples=sc.evaluation.max_examples,
        rng_partition=streams.generator("partition"),
        rng_eval=streams.generator("eval-subset"),
        scenario_file=loaded.path,
        local_test_examples=sc.dataset.local_test_examples,
    )
    recorder = Recorder()
    sim_ref: list[Simulation] = []
    fleet = Fleet(
        [(e.profile, loaded.profiles[e.profile], e.count) for e in sc.fleet],
        streams,
        on_change=lambda t, dev, online: recorder.event(
            t, sim_ref[0].state.round_idx if sim_ref else 0, dev, "online" if online else "offline"
        ),
    )
    cost_model = _cost_model(loaded, bundle, task, str(model_path.resolve()))
    opt = sc.training.optimizer
    base = TrainConfig(
        local_steps=sc.training.local_steps,
        batch_size=sc.training.batch_size,
        seq_len=sc.training.seq_len,
        lr=opt.lr,
        optimizer=opt.name,
        weight_decay=opt.weight_decay,
    )
    evaluator = Evaluator(bundle, task.test, sc.evaluation.batch_size, sc.training.seq_len)
    ctx = StrategyContext(
        base, fleet, cost_model, streams, bundle.block_of, bundle.num_blocks, evaluate=evaluator.evaluate
    )
    strategy = make_strategy(sc.strategy.name, sc.strategy.options, ctx)

    initial_state = bundle.state()
    initial_eval = evaluator.evaluate(initial_state)
    setup_s = time.perf_counter() - host_start

    bar = _progress_bar(sc.stop.max_rounds, sc.name, progress)
    executor: Executor = InlineExecutor(LocalTrainer(bundle, task.train))
    if wrap_executor is not None:
        executor = wrap_executor(executor)
    sim = Simulation(
        scenario=sc,
        fleet=fleet,
        task=task,
        strategy=strategy,
        cost_model=cost_model,
        executor=executor,
        evaluator=evaluator,
        streams=streams,
        recorder=recorder,
        initial_state=initial_state,
        on_round=lambda st, t: _tick(bar, st, t),
    )
    sim_ref.append(sim)
    try:
        state = sim.run()
    finally:
        strategy.close()
        if bar is not None:
            bar.close()
    summary = _summary(loaded, sim, state, recorder, task.majority_accuracy, initial_eval.accuracy, base, setup_s)
    summary["host_time_s"]["total"] = time.perf_counter() - host_start
    summary["label"] = label or target_dir.name
    write_run_dir(target_dir, recorder, summary, loaded.raw | {"scenario_file": str(loaded.path)})
    return RunResult(target_dir, summary)


def _cost_model(loaded: LoadedScenario, bundle: ModelBundle, task: Task, model_key: str) -> CostModel:
    spec = loaded.scenario.cost_model
    tensor_bytes = {name: p.numel() * p.element_size() for name, p in bundle.trainable.items()}
    if spec is None:
        return CostModel(ModelCounter(bundle, task.train, model_key), bundle.num_blocks, tensor_bytes)
    from fleetsim.costs.proxies import MetaCounter

    lora = loaded.scenario.model.lora
    counter = MetaCounter(spec.arch, spec.weight_dtype, task.num_labels, lora.r, lora.alpha)
    return CostModel(counter, bundle.num_blocks, tensor_bytes)


def _progress_bar(total: int | None, name: str, enabled: bool) -> Any:
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=name, unit="round", dynamic_ncols=True)


def _tick(bar: Any, state: SimulationState, sim_time_s: float) -> None:
    if bar is None:
        return
    acc = state.last_eval.accuracy if state.last_eval else float("nan")
    bar.set_postfix_str(f"sim {_hms(sim_time_s)}  acc {acc:.3f}")
    bar.update(1)


def _hms(seconds: float) -> str:
    s = round(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _summary(
    loaded: LoadedScenario,
    sim: Simulation,
    state: SimulationState,
    recorder: Recorder,
    majority: float,
    initial_accuracy: float,
    base: TrainConfig,
    setup_s: float,
) -> dict[str, Any]:
    frames = recorder.frames()
    rounds, updates = frames["rounds"], frames["updates"]
    sc = loaded.scenario
    lost = updates[updates.outcome != "delivered"].outcome.value_counts().to_dict() if len(updates) else {}
    step = sim.cost_model.step(base.batch_size, base.seq_len)
    delivered = int((updates.outcome == "delivered").sum()) if len(updates) else 0
    return {
        "scenario": sc.name,
        "scenario_file": str(loaded.path),
        "seed": sc.seed,
        "strategy": sc.strategy.name,
        "model": sc.model.id,
        "dataset": sc.dataset.id,
        "fleet_size": sc.fleet_size,
        "rounds": len(rounds),
        "stop_reason": state.stop_reason,
        "sim_time_s": float(rounds.end_s.iloc[-1]) if len(rounds) else 0.0,
        "target_accuracy": sc.stop.target_accuracy,
        "time_to_target_s": state.time_to_target_s,
        "round_to_target": state.round_to_target,
        "initial_accuracy": initial_accuracy,
        "final_accuracy": state.last_eval.accuracy if state.last_eval else None,
        "personalized_accuracy": state.last_personalized,
        "final_eval_loss": state.last_eval.loss if state.last_eval else None,
        "best_accuracy": max((a for _, a in state.history), default=None),
        "majority_class_accuracy": majority,
        "eval_examples": len(sim.task.test),
        "updates_selected": len(updates),
        "updates_delivered": delivered,
        "updates_lost": {k: int(v) for k, v in lost.items()},
        "device_energy_j": float(updates.energy_j.sum()) if len(updates) else 0.0,
        "bytes_down": int(updates.bytes_down.sum()) if len(updates) else 0,
        "bytes_up": int(updates.bytes_up.sum()) if len(updates) else 0,
        "cost_model": {
            **sim.cost_model.describe(),
            "flops_per_step_full_depth": step.flops,
            "activation_bytes_per_step_full_depth": step.activation_bytes,
            "trainable_bytes": sim.cost_model.counter.trainable_bytes,
            "frozen_bytes": sim.cost_model.counter.frozen_bytes,
        },
        "host_time_s": {
            "setup": setup_s,
            "training": state.host_train_s,
            "evaluation": state.host_eval_s,
            "per_delivered_update": state.host_train_s / delivered if delivered else None,
        },
        "host": {"cpus": torch.get_num_threads(), "machine": platform.machine()},
        "versions": _versions(),
    }


def remove_partial(path: Path) -> None:
    shutil.rmtree(path.with_name(path.name + ".partial"), ignore_errors=True)
