"""Build a run from a loaded scenario, simulate it, and write its run directory.

This is the composition root: it wires assets, data, model, costs, strategy, executor, evaluator,
simulation and recorder together, and is the only place that knows all of them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fleetsim.app.loading import LoadedScenario
from fleetsim.app.summary import run_summary
from fleetsim.core.errors import InputError
from fleetsim.core.rng import Streams
from fleetsim.core.updates import TrainConfig
from fleetsim.costs.cost_model import CostModel
from fleetsim.costs.model_counter import ModelCounter
from fleetsim.io.recorder import Recorder
from fleetsim.io.rundir import new_run_dir, write_run_dir
from fleetsim.policy.strategies import StrategyContext, make_strategy
from fleetsim.sim.simulation import Simulation
from fleetsim.sim.state import SimulationState
from fleetsim.spec.scenario import Scenario
from fleetsim.train import assets
from fleetsim.train.data import Task, build_task
from fleetsim.train.evaluation import Evaluator
from fleetsim.train.executors import EXECUTORS, Executor
from fleetsim.train.local import LocalTrainer
from fleetsim.train.models import ModelBundle, load_model

__all__ = ["RunResult", "run_scenario"]


@dataclass(frozen=True)
class RunResult:
    run_dir: Path
    summary: dict[str, Any]


def run_scenario(
    loaded: LoadedScenario,
    *,
    run_dir: Path | None = None,
    progress: bool = True,
    wrap_executor: Callable[[Executor], Executor] | None = None,
    label: str | None = None,
) -> RunResult:
    """Simulate ``loaded`` and write its run directory; return the directory and the summary.

    ``run_dir`` must not exist (default: a new ``<output_dir>/<name>-<time>``). ``wrap_executor`` may wrap
    the executor that trains delivered updates (instrumentation, tests).
    """
    host_start = time.perf_counter()
    sc = loaded.scenario
    if run_dir is not None and run_dir.exists():
        raise FileExistsError(f"run directory {run_dir} already exists")
    target_dir = run_dir or new_run_dir(Path(sc.output_dir), sc.name)
    streams = Streams(sc.seed)
    train_frame, _ = assets.load_dataset_frames(sc.dataset.id)
    model_path = assets.model_dir(sc.model.id)
    bundle = load_model(
        str(model_path), int(train_frame.label.nunique()), sc.model.lora, streams.integer_seed("model-init")
    )
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
    cost_model = _cost_model(sc, bundle, task, str(model_path.resolve()))
    base = _base_config(sc)
    evaluator = Evaluator(bundle, task, sc.evaluation.batch_size, sc.training.seq_len)
    shard_sizes = [len(shard) for shard in task.shards]
    ctx = StrategyContext(
        base,
        cost_model,
        streams,
        bundle.block_of,
        bundle.num_blocks,
        evaluate=evaluator.evaluate,
        shard_sizes=shard_sizes,
    )
    strategy = make_strategy(sc.strategy.name, sc.strategy.options, ctx)

    initial_state = bundle.state()
    initial_eval = evaluator.evaluate(initial_state)
    setup_s = time.perf_counter() - host_start

    executor = EXECUTORS[sc.executor.kind].build(LocalTrainer(bundle, task.train))
    if wrap_executor is not None:
        executor = wrap_executor(executor)
    recorder = Recorder()
    sim = Simulation(
        scenario=sc,
        composition=[(e.profile, loaded.profiles[e.profile], e.count) for e in sc.fleet],
        shards=task.shards,
        strategy=strategy,
        cost_model=cost_model,
        executor=executor,
        evaluator=evaluator,
        streams=streams,
        recorder=recorder,
        initial_state=initial_state,
    )
    bar = None
    try:
        if not any(strategy.configurator.can_train(d) for d in sim.fleet.devices):
            raise InputError(
                loaded.path,
                "fleet",
                f"at least one device on which some configuration of {sc.strategy.name} fits in memory",
                f"none of {sc.fleet_size} devices",
            )
        bar = _progress_bar(sc.stop.max_rounds, sc.name, progress)
        sim.on_round = lambda st, t: _tick(bar, st, t)
        state = sim.run()
    finally:
        strategy.close()
        if bar is not None:
            bar.close()
    summary = run_summary(
        loaded,
        state,
        recorder.frames(),
        cost_model,
        base,
        majority_accuracy=task.majority_accuracy,
        initial_accuracy=initial_eval.accuracy,
        eval_examples=len(task.test),
        setup_s=setup_s,
    )
    summary["host_time_s"]["total"] = time.perf_counter() - host_start
    summary["label"] = label or target_dir.name
    write_run_dir(target_dir, recorder, summary, loaded.resolved())
    return RunResult(target_dir, summary)


def _base_config(sc: Scenario) -> TrainConfig:
    """The scenario's training configuration (what every device gets before a strategy changes it)."""
    opt = sc.training.optimizer
    return TrainConfig(
        local_steps=sc.training.local_steps,
        batch_size=sc.training.batch_size,
        seq_len=sc.training.seq_len,
        lr=opt.lr,
        optimizer=opt.name,
        weight_decay=opt.weight_decay,
    )


def _cost_model(sc: Scenario, bundle: ModelBundle, task: Task, model_key: str) -> CostModel:
    cache = assets.cache_dir() / "costs"
    if sc.cost_model is None:
        counter = ModelCounter(bundle, task.train, model_key)
        return CostModel(counter, bundle.num_blocks, bundle.tensor_bytes, cache_dir=cache)
    from fleetsim.costs.proxies import MetaCounter

    lora = sc.model.lora
    proxy = MetaCounter(sc.cost_model.arch, sc.cost_model.weight_dtype, task.num_labels, lora.r, lora.alpha)
    return CostModel(proxy, bundle.num_blocks, bundle.tensor_bytes, cache_dir=cache)


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
