"""Build a run from a loaded scenario, simulate it, and keep its run directory consistent throughout.

This is the composition root: it wires assets, data, model, costs, strategy, executor, evaluator,
simulation and recorder together, and is the only place that knows all of them. The run directory is
reserved before anything else happens; every finished round commits its rows and a checkpoint, so a run stopped
by Ctrl-C (at the end of the round in progress), a crash or a kill resumes with ``resume_run`` and ends
with the same tables as a run that was never stopped.
"""

from __future__ import annotations

import math
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from fleetsim.app.ingredients import base_config, cost_model_for
from fleetsim.app.loading import LoadedScenario, load_saved_scenario
from fleetsim.app.summary import run_summary
from fleetsim.core.errors import InputError, WorkerLost
from fleetsim.core.rng import Streams
from fleetsim.io.recorder import Recorder
from fleetsim.io.rundir import RunDir, reserve_run_dir
from fleetsim.policy.strategies import StrategyContext, make_strategy
from fleetsim.sim.simulation import Simulation
from fleetsim.sim.state import SimulationState
from fleetsim.spec.scenario import Scenario
from fleetsim.train import assets
from fleetsim.train.data import build_task
from fleetsim.train.evaluation import Evaluator
from fleetsim.train.executors import EXECUTORS, Executor, TrainerRecipe
from fleetsim.train.hardware import resolve_device
from fleetsim.train.local import LocalTrainer
from fleetsim.train.models import LoraTargetError, load_model

__all__ = ["RunFailed", "RunInterrupted", "RunResult", "resume_run", "run_scenario"]


@dataclass(frozen=True)
class RunResult:
    run_dir: Path
    summary: dict[str, Any]


class RunInterrupted(Exception):
    """A run stopped before it finished; its directory holds the last committed round and a checkpoint."""

    def __init__(self, run_dir: Path, rounds: int, reason: str | None = None):
        self.run_dir = run_dir
        self.rounds = rounds
        self.reason = reason
        stopped = f"stopped after {rounds} committed rounds; resume with: fleetsim run --resume {run_dir}"
        super().__init__(stopped if reason is None else f"{reason}; {stopped}")


class RunFailed(RunInterrupted):
    """A run stopped because a worker died or failed (not a user mistake); it can be resumed."""


def run_scenario(
    loaded: LoadedScenario,
    *,
    run_dir: Path | None = None,
    progress: bool = True,
    wrap_executor: Callable[[Executor], Executor] | None = None,
    label: str | None = None,
) -> RunResult:
    """Simulate ``loaded`` into a new run directory; return the directory and the summary.

    ``run_dir`` must not exist (default: a new ``<output_dir>/<name>-<time>``). ``wrap_executor`` may wrap
    the executor that trains delivered updates (instrumentation, tests). Raises :class:`RunInterrupted`
    when stopped early (Ctrl-C), after writing the checkpoint.
    """
    sc = loaded.scenario
    parent = Path(sc.output_dir) if run_dir is None else run_dir.parent
    new_folders = [f for f in (parent, *parent.parents) if not f.exists()]
    try:
        if run_dir is None:
            run_dir = reserve_run_dir(parent, sc.name)
        else:
            run_dir.mkdir(parents=True)  # exactly this one: an existing folder is an error
    except OSError as err:
        file, field = ("--run-dir", "") if run_dir is not None else (str(loaded.path), "output_dir")
        expected = f"a folder that can be created ({err.strerror})"
        raise InputError(file, field, expected, str(run_dir or parent)) from None
    directory = RunDir(run_dir)
    profiles = {pid: p.model_dump(mode="json") for pid, p in loaded.profiles.items()}
    directory.write_scenario(loaded.resolved(), loaded.raw, str(loaded.path), profiles)
    label = label or run_dir.name
    directory.write_summary(_status(loaded, label, "running", 0))
    try:
        run = _Run(loaded, progress, wrap_executor)
    except InputError:  # a mistake found while setting up: nothing ran, nothing to keep
        shutil.rmtree(run_dir, ignore_errors=True)
        for folder in new_folders:  # deepest first
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
        raise
    return run.go(directory, label, resume=False)


def resume_run(run_dir: Path, *, progress: bool = True) -> RunResult:
    """Go on with a stopped run from its last checkpoint (or from the start, if it has none)."""
    directory = RunDir(run_dir)
    status = directory.status()
    if status == "complete":  # nothing to do (but what only a resume needed may still be there)
        directory.clean_up()
        summary = directory.summary()
        assert summary is not None
        return RunResult(run_dir, summary)
    if not (run_dir / "resume" / "profiles.json").is_file():
        expected = "a run directory to resume (status running or interrupted; one stopped before it began has none)"
        raise InputError(run_dir, "", expected, str(run_dir))
    loaded = load_saved_scenario(*directory.read_scenario())
    if loaded.scenario.rounds.mode == "async":
        expected = "a synchronous or over-committed run (asynchronous runs do not checkpoint updates in flight)"
        raise InputError(run_dir, "rounds.mode", expected, "async")
    label = str((directory.summary() or {}).get("label") or run_dir.name)
    return _Run(loaded, progress, None).go(directory, label, resume=True)


class _Run:
    """One run being set up, simulated and written (fresh or resumed)."""

    def __init__(self, loaded: LoadedScenario, progress: bool, wrap_executor: Callable[[Executor], Executor] | None):
        self.host_start = time.perf_counter()
        self.loaded = loaded
        self.progress = progress
        self._build(wrap_executor)

    def _build(self, wrap_executor: Callable[[Executor], Executor] | None) -> None:
        loaded, sc = self.loaded, self.loaded.scenario
        streams = Streams(sc.seed)
        systems_only = not sc.training.trains
        frames = loaded.dataset_frames()
        train_frame = frames[0]
        model_path = assets.model_dir(sc.model.id)
        init_seed = streams.integer_seed("model-init")
        num_labels = int(train_frame.label.nunique())
        try:
            bundle = load_model(str(model_path), num_labels, sc.model.lora, init_seed, sc.task)
        except LoraTargetError as err:
            raise InputError(loaded.path, "model.lora.target_modules", err.expected, err.got) from None
        task = build_task(
            dataset_id=sc.dataset.name,
            frames=frames if sc.dataset.id is None else None,
            model_key=str(model_path.resolve()),
            tokenizer=bundle.tokenizer,
            seq_len=sc.training.seq_len,
            n_devices=sc.fleet_size if not systems_only else 1,
            partition=sc.dataset.partition,
            eval_max_examples=sc.evaluation.max_examples,
            rng_partition=streams.generator("partition"),
            rng_eval=streams.generator("eval-subset"),
            scenario_file=loaded.path,
            local_test_examples=sc.dataset.local_test_examples,
        )
        if systems_only:  # no data is split: every device holds one full batch (costs at the configured batch)
            task = replace(task, shards=[np.arange(sc.training.batch_size)] * sc.fleet_size)
        self.task = task
        self.cost_model = cost_model_for(sc, bundle, task, str(model_path.resolve()))
        self.base = base_config(sc)
        recipe = TrainerRecipe(
            model_path=str(model_path),
            num_labels=num_labels,
            task=sc.task,
            lora=sc.model.lora,
            init_seed=init_seed,
            train=task.train,
            device=resolve_device(sc.training.device).type,
            precision=sc.training.precision,
            compile=sc.training.compile,
        )
        # The cost counter measures this CPU fp32 model: training on a GPU or compiled gets a model of its own.
        local = recipe.trainer(bundle if recipe.device == "cpu" and not recipe.compile else None)
        evaluator = Evaluator(local.bundle, task, sc.evaluation.batch_size, sc.training.seq_len)
        shard_sizes = [len(shard) for shard in task.shards]
        blocks = bundle.block_of, bundle.num_blocks
        ctx = StrategyContext(
            self.base,
            self.cost_model,
            streams,
            *blocks,
            evaluate=evaluator.evaluate,
            shard_sizes=shard_sizes,
            selection=sc.selection.name,
            selection_options=sc.selection.options,
            deadline_s=sc.rounds.deadline_s,
        )
        self.strategy = make_strategy(sc.strategy.name, sc.strategy.options, ctx)
        initial_state = bundle.state()
        self.executor: Executor | None = None
        try:  # from here on, workers may be running: close them (and the strategy) on any failure
            self._simulation(sc, loaded, recipe, local, evaluator, streams, initial_state, wrap_executor)
        except BaseException:
            self._close()
            raise
        self.setup_s = time.perf_counter() - self.host_start

    def _simulation(
        self,
        sc: Scenario,
        loaded: LoadedScenario,
        recipe: TrainerRecipe,
        local: LocalTrainer,
        evaluator: Evaluator,
        streams: Streams,
        initial_state: dict[str, Any],
        wrap_executor: Callable[[Executor], Executor] | None,
    ) -> None:
        """Start the executor, score the initial model and build the simulation."""
        executor = EXECUTORS[sc.executor.kind].build(recipe, local, sc.executor)  # workers load meanwhile
        self.executor = executor if wrap_executor is None else wrap_executor(executor)
        systems_only = not sc.training.trains
        initial = None if systems_only else evaluator.evaluate(initial_state)
        self.initial_accuracy = math.nan if initial is None else initial.accuracy
        self.initial_perplexity = None if initial is None else initial.perplexity
        self.recorder = Recorder(perplexity=sc.language_model)
        self.sim = Simulation(
            scenario=sc,
            composition=loaded.composition(),
            shards=self.task.shards,
            strategy=self.strategy,
            cost_model=self.cost_model,
            executor=self.executor,
            evaluator=evaluator,
            streams=streams,
            recorder=self.recorder,
            initial_state=initial_state,
        )
        if not any(self.strategy.configurator.can_train(d) for d in self.sim.fleet.devices):
            raise InputError(
                loaded.path,
                "fleet",
                f"at least one device on which some configuration of {sc.strategy.name} fits in memory",
                f"none of {sc.fleet_size} devices",
            )

    # ------------------------------------------------------------------------------------------- running

    def go(self, directory: RunDir, label: str, *, resume: bool) -> RunResult:
        """Simulate into ``directory`` (from its last checkpoint when ``resume``), committing every round."""
        sc = self.loaded.scenario
        path = directory.path
        self.directory = directory
        self.label = label
        self.earlier_host_s = 0.0
        self.parts = 0  # parts committed
        if resume:
            self._restore()
        self.directory.write_summary(self._status("running"))
        self.committed = self.recorder.counts()
        bar = None
        try:
            with _stop_on_ctrl_c(self.sim):
                bar = _progress_bar(sc.stop.max_rounds, sc.name, self.progress, self.sim.state.round_idx)
                self.sim.on_round = lambda st, t: self._commit(bar, st, t)
                state = self.sim.run()
        except BaseException as err:
            self._stopped(f"{type(err).__name__}: {err}" if not isinstance(err, KeyboardInterrupt) else "Ctrl-C")
            if isinstance(err, KeyboardInterrupt):
                raise RunInterrupted(path, self.sim.state.round_idx) from None
            if isinstance(err, WorkerLost):
                raise RunFailed(path, self.sim.state.round_idx, str(err)) from err
            raise
        finally:
            self._close()
            if bar is not None:
                bar.close()
        if self.sim.stopped_early:
            self._stopped("Ctrl-C")
            raise RunInterrupted(path, state.round_idx)
        return self._finish(state)

    def _close(self) -> None:
        self.strategy.close()
        if self.executor is not None:
            self.executor.close()

    def _commit(self, bar: Any, state: SimulationState, sim_time_s: float) -> None:
        """A round ended: every ``rounds.commit_every`` rounds (and at the last), commit the rows since the
        last commit as the next part, then a checkpoint to resume from."""
        every = self.loaded.scenario.rounds.commit_every
        if state.round_idx % every == 0 or state.stop_reason is not None:
            self.directory.write_part(self.parts, self.recorder.rows_since(self.committed))
            self.parts += 1
            self.committed = self.recorder.counts()
            meta = {
                "parts": self.parts,
                "initial_accuracy": self.initial_accuracy,
                "host_s": self._host_s(),
                "first_round": 1,  # the committed rows' number of the first round
            }
            self.directory.write_checkpoint(self.sim.state_dict(), meta)
        _tick(bar, state, sim_time_s)

    def _restore(self) -> None:
        """Load the last checkpoint and the rows committed with it; drop anything written after it."""
        checkpoint = self.directory.read_checkpoint()
        parts = 0
        if checkpoint is not None:
            state, meta = checkpoint
            parts = int(meta["parts"])
            self.parts = parts
            self.sim.load_state_dict(state)
            self.initial_accuracy = float(meta["initial_accuracy"])
            self.earlier_host_s = float(meta["host_s"])
            rows = self.directory.read_parts(parts)
            if meta.get("first_round", 0) == 0:  # committed before rounds were numbered from 1
                rows = {name: [_renumbered(row) for row in table] for name, table in rows.items()}
            self.recorder.extend(rows)
        self.directory.drop_parts_from(parts)

    def _host_s(self) -> float:
        return self.earlier_host_s + time.perf_counter() - self.host_start

    def _status(self, status: str, **extra: Any) -> dict[str, Any]:
        return _status(self.loaded, self.label, status, self.sim.state.round_idx, **extra)

    def _stopped(self, reason: str) -> None:
        resume = f"fleetsim run --resume {self.directory.path}"
        self.directory.write_summary(self._status("interrupted", reason=reason, resume=resume))

    def _finish(self, state: SimulationState) -> RunResult:
        frames = self.recorder.frames()
        summary = run_summary(
            self.loaded,
            state,
            frames,
            self.cost_model,
            self.base,
            majority_accuracy=self.task.majority_accuracy,
            initial_accuracy=self.initial_accuracy,
            initial_perplexity=self.initial_perplexity,
            eval_examples=len(self.task.test),
            setup_s=self.setup_s,
        )
        summary["host_time_s"]["total"] = self._host_s()
        summary = {"status": "complete", "label": self.label, **summary}
        self.directory.write_tables(frames)
        self.directory.write_summary(summary)
        self.directory.clean_up()
        return RunResult(self.directory.path, summary)


def _renumbered(row: dict[str, Any]) -> dict[str, Any]:
    """A row committed with a 0-based ``round`` column, numbered from 1."""
    return {**row, "round": row["round"] + 1} if "round" in row else row


def _status(loaded: LoadedScenario, label: str, status: str, rounds: int, **extra: Any) -> dict[str, Any]:
    """``summary.json`` of a run that has not completed."""
    sc = loaded.scenario
    return {
        "status": status,
        "label": label,
        "scenario": sc.name,
        "seed": sc.seed,
        "strategy": sc.strategy.name,
        "rounds_committed": rounds,
        "updated": datetime.now().isoformat(timespec="seconds"),
        **extra,
    }


@contextmanager
def _stop_on_ctrl_c(sim: Simulation) -> Iterator[None]:
    """The first Ctrl-C asks the simulation to stop at the end of the round in progress; a second one
    interrupts at once (the last committed round is kept)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)

    def request_stop(signum: int, frame: Any) -> None:
        sim.stop_requested = True
        print("\nfleetsim: stopping after this round (Ctrl-C again to stop now)", file=sys.stderr, flush=True)
        signal.signal(signal.SIGINT, previous)

    signal.signal(signal.SIGINT, request_stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _progress_bar(total: int | None, name: str, enabled: bool, done: int) -> Any:
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=done, desc=name, unit="round", dynamic_ncols=True)


def _tick(bar: Any, state: SimulationState, sim_time_s: float) -> None:
    if bar is None:
        return
    acc = state.last_eval.accuracy if state.last_eval else float("nan")
    bar.set_postfix_str(f"sim {_hms(sim_time_s)}  acc {acc:.3f}")
    bar.update(1)


def _hms(seconds: float) -> str:
    s = round(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"
