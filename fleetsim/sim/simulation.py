"""The discrete-event simulation: the only owner of the SimPy environment and of simulated time.

Each round the server process selects online devices, asks the strategy for their configs, and starts
one client process per device (:mod:`.client`): download ▸ compute ▸ upload, with durations from the
device's profile and the update's cost. When every client has reported (or the deadline passed; with
over-commitment, when the first K have arrived), the delivered updates are trained for real by the
executor — host time only, no simulated time — aggregated, and the global model is evaluated at the
configured cadence. Asynchronous rounds are :mod:`.buffered`'s server. In systems mode
(``training.mode: none``) nothing is trained or evaluated; simulated times are unchanged. The strategy is called in the
order of its round contract (:mod:`fleetsim.policy.strategies.base`).
"""

from __future__ import annotations

import gc
import math
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import TYPE_CHECKING, Protocol

import numpy as np
import simpy

from fleetsim.core.evaluation import EvalResult
from fleetsim.core.rng import Streams
from fleetsim.core.rounds import Aggregate, RoundExtras, RoundFeedback, round_number
from fleetsim.core.state import StateDict
from fleetsim.core.updates import Outcome, UpdateRecord, UpdateResult
from fleetsim.costs.cost_model import CostModel
from fleetsim.io.recorder import Recorder
from fleetsim.policy.strategies import Strategy
from fleetsim.sim.buffered import buffered_server
from fleetsim.sim.client import Attempt, client_process
from fleetsim.sim.planning import plan_update
from fleetsim.sim.server_link import ServerLink
from fleetsim.sim.state import SimulationState
from fleetsim.spec.profiles import DeviceProfile
from fleetsim.spec.scenario import Scenario, StopSpec
from fleetsim.train.executors import Executor
from fleetsim.world.fleet import Device, Fleet

if TYPE_CHECKING:
    import torch

__all__ = ["Evaluator", "Simulation", "reached_target"]

YOUNG_COLLECTION_ALLOCATIONS = 50_000  # during a run: see _collector_for_long_runs


class Evaluator(Protocol):
    """Scores a trainable state at full depth: on the evaluation subset, or on a device's local examples."""

    def evaluate(self, state: dict[str, torch.Tensor]) -> EvalResult: ...

    def evaluate_local(self, state: dict[str, torch.Tensor], device_id: int) -> EvalResult: ...


class Simulation:
    """Runs a scenario's rounds in SimPy time; trains delivered updates for real."""

    def __init__(
        self,
        *,
        scenario: Scenario,
        composition: Sequence[tuple[str, DeviceProfile, int]],
        shards: Sequence[np.ndarray],
        strategy: Strategy,
        cost_model: CostModel,
        executor: Executor,
        evaluator: Evaluator,
        streams: Streams,
        recorder: Recorder,
        initial_state: dict[str, torch.Tensor],
        on_round: Callable[[SimulationState, float], None] | None = None,
    ):
        """``composition``: (profile id, profile, count) per fleet group; ``shards``: each device's training
        examples (indices), in device order."""
        self.scenario = scenario
        self.shards = shards
        self.strategy = strategy
        self.cost_model = cost_model
        self.executor = executor
        self.evaluator = evaluator
        self.streams = streams
        self.recorder = recorder
        self.state = SimulationState(global_state=initial_state)
        self.fleet = Fleet(list(composition), streams, self._availability_changed, scenario.outages)
        n_personal = min(scenario.evaluation.personalized_devices, len(self.fleet))
        self.personal_sample = sorted(
            int(i) for i in streams.generator("personal-eval").choice(len(self.fleet), size=n_personal, replace=False)
        )
        self.on_round = on_round
        self.env = simpy.Environment()
        self.link: ServerLink | None = None  # the server's capped links, made for the environment that runs
        self.stop_requested = False  # set (e.g. by Ctrl-C) to stop at the next round boundary

    def run(self) -> SimulationState:
        """Run until a stop condition holds or a stop is requested; return the state."""
        caps = self.scenario.server
        self.link = ServerLink(self.env, caps.downlink_mbps, caps.uplink_mbps) if caps.capped else None
        server = self.env.process(self._server())
        with _collector_for_long_runs():
            self.env.run(until=server)
        return self.state

    @property
    def stopped_early(self) -> bool:
        """Whether the last :meth:`run` ended on request, before a stop condition held."""
        return self.state.stop_reason is None

    def state_dict(self) -> StateDict:
        """Everything needed to go on from this round boundary: the clock, the server's state, the global
        trainable state, every device's availability and the strategy's state."""
        return {
            "clock_s": float(self.env.now),
            "server": self.state.state_dict(),
            "global_state": dict(self.state.global_state),
            "fleet": self.fleet.state_dict(),
            "strategy": self.strategy.state_dict(),
        }

    def load_state_dict(self, state: StateDict) -> None:
        """Go on from a round boundary saved by :meth:`state_dict` (before :meth:`run`)."""
        self.env = simpy.Environment(initial_time=float(state["clock_s"]))
        self.state.load_state_dict(state["server"])
        self.state.global_state = dict(state["global_state"])
        self.fleet.load_state_dict(state["fleet"])
        self.strategy.load_state_dict(state["strategy"])

    def _availability_changed(self, time_s: float, device_id: int, online: bool) -> None:
        """Log an availability change (found lazily, maybe rounds later) against the round it happened in."""
        self.recorder.event(time_s, self.state.round_at(time_s), device_id, "online" if online else "offline")

    # ------------------------------------------------------------------------------------------ server

    def _server(self) -> Generator[simpy.Event, object, None]:
        sc, env, st = self.scenario, self.env, self.state
        if sc.rounds.mode == "async":
            yield from buffered_server(self)
            return
        while st.stop_reason is None and not self.stop_requested:
            available = self.fleet.available(env.now)
            selected = []
            if len(available) >= sc.rounds.min_available:
                selected = self.strategy.select(st.round_idx, available, self._seats())
            if not selected:  # too few online, or none of them can train: wait like any other round
                self.recorder.event(env.now, st.round_idx, None, "wait", f"{len(available)} online")
                if sc.stop.max_sim_time_s is not None and env.now + sc.rounds.retry_s > sc.stop.max_sim_time_s:
                    st.stop_reason = "max_sim_time_s"
                    break
                yield env.timeout(sc.rounds.retry_s)
                continue
            yield from self._round(available, selected)

    def _round(self, available: list[Device], selected: list[Device]) -> Generator[simpy.Event, object, None]:
        sc, env, st, strategy = self.scenario, self.env, self.state, self.strategy
        r = st.round_idx
        start_s = env.now
        assignment = strategy.configure(r, selected)
        n_blocks = self.cost_model.model_blocks
        plans = {
            d.id: plan_update(r, d.id, assignment.configs[d.id], self.shards[d.id], n_blocks, self.streams)
            for d in selected
        }
        records: dict[int, UpdateRecord] = {}
        clients = []
        flops: dict[int, int] = {}
        enough = env.event()  # overcommit: the first K have arrived
        keep = sc.rounds.clients_per_round if sc.rounds.mode == "overcommit" else len(selected)
        for d in selected:
            cost = self.cost_model.update(plans[d.id])
            flops[d.id] = cost.flops
            cond = self.fleet.conditions(d, r)
            attempt = Attempt(plans[d.id], d, cost, cond, self.fleet, env.now)
            client = client_process(env, attempt, self.recorder.event, records, self.link)
            clients.append(env.process(self._counted(client, records, keep, enough)))
        yield env.all_of(clients) | env.timeout(sc.rounds.deadline_s) | enough
        cause = Outcome.OVERCOMMITTED if enough.triggered else Outcome.DEADLINE
        for proc in clients:
            if proc.is_alive:
                proc.interrupt(cause.value)
        yield env.all_of(clients)
        end_s = env.now

        ordered = _keep_first(keep, [records[d.id] for d in selected])
        delivered = [plans[rec.device_id] for rec in ordered if rec.outcome is Outcome.DELIVERED]
        systems_only = not sc.training.trains
        results: list[UpdateResult] = []
        aggregate = Aggregate(st.global_state)
        if not systems_only:
            t0 = time.perf_counter()
            starts = [strategy.start_state(plan.device_id, st.global_state) for plan in delivered]
            results = self.executor.run(delivered, starts, [flops[plan.device_id] for plan in delivered])
            st.host_train_s += time.perf_counter() - t0
            aggregate = strategy.aggregate(r, st.global_state, results)
            st.global_state = aggregate.global_state

        evaluation, personalized = None, None
        last = self.limit_reason(r, end_s) is not None
        if not systems_only and (round_number(r) % sc.evaluation.every_rounds == 0 or last):
            evaluation, personalized = self.evaluate(end_s, r)
        observed = strategy.observe(RoundFeedback(r, start_s, end_s, ordered, plans, results, evaluation))
        extras = RoundExtras(
            update_columns=observed.update_columns,
            round_columns={
                **assignment.round_columns,
                **aggregate.round_columns,
                **observed.round_columns,
                "personalized_accuracy": math.nan if personalized is None else personalized,
            },
            tables=observed.tables,
        )
        self.recorder.add_round(r, start_s, end_s, len(available), ordered, plans, results, evaluation, extras)
        self.round_ended(end_s, last)

    def round_ended(self, end_s: float, last: bool) -> None:
        """Close the round in progress at ``end_s`` (the last one if a limit holds) and report it."""
        st = self.state
        r = st.round_idx
        st.round_ends_s.append(end_s)
        st.round_idx += 1
        if st.stop_reason is None and last:
            st.stop_reason = self.limit_reason(r, end_s)
        if self.on_round is not None:
            self.on_round(st, end_s)

    def _seats(self) -> int:
        """How many devices a round selects: K, or ⌈(1 + o) · K⌉ when over-committing."""
        rounds = self.scenario.rounds
        if rounds.mode == "overcommit":
            return math.ceil((1 + rounds.overcommit) * rounds.clients_per_round - 1e-9)
        return rounds.clients_per_round

    def _counted(
        self,
        client: Generator[simpy.Event, object, None],
        records: dict[int, UpdateRecord],
        keep: int,
        enough: simpy.Event,
    ) -> Generator[simpy.Event, object, None]:
        """Run ``client``; trigger ``enough`` once ``keep`` updates have been delivered."""
        yield from client
        delivered = sum(rec.outcome is Outcome.DELIVERED for rec in records.values())
        if delivered >= keep and not enough.triggered:
            enough.succeed()

    def evaluate(self, end_s: float, r: int) -> tuple[EvalResult, float | None]:
        """Global and mean personalized accuracy; stops the run when the target is reached."""
        sc, st = self.scenario, self.state
        t0 = time.perf_counter()
        evaluation = self.evaluator.evaluate(self.strategy.eval_state(st.global_state))
        personalized = self._personalized_accuracy()
        st.host_eval_s += time.perf_counter() - t0
        st.last_eval = evaluation
        st.last_personalized = personalized
        st.history.append((end_s, evaluation.accuracy))
        reached = reached_target(sc.stop, evaluation)
        if reached is not None and st.time_to_target_s is None:
            st.time_to_target_s, st.round_idx_to_target = end_s, r
            if not sc.stop.continue_after_target:
                st.stop_reason = reached
        return evaluation, personalized

    def _personalized_accuracy(self) -> float | None:
        """Mean accuracy of each sampled device's own model on its local held-out examples."""
        if not self.personal_sample:
            return None
        accs = [
            self.evaluator.evaluate_local(self.strategy.device_state(d, self.state.global_state), d).accuracy
            for d in self.personal_sample
        ]
        return float(np.mean(accs))

    def limit_reason(self, r: int, end_s: float) -> str | None:
        stop = self.scenario.stop
        if stop.max_rounds is not None and round_number(r) >= stop.max_rounds:
            return "max_rounds"
        if stop.max_sim_time_s is not None and end_s >= stop.max_sim_time_s:
            return "max_sim_time_s"
        return None


@contextmanager
def _collector_for_long_runs() -> Iterator[None]:
    """Tune Python's cyclic garbage collector for a run: what exists now (the fleet, the model) lives all
    run, so it is frozen out of every collection; and the youngest generation is collected every 50,000
    allocations, not 700, since an update's objects live for thousands of allocations (the default promotes
    them to older generations, which then rescan them). Both are undone afterwards."""
    threshold = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(YOUNG_COLLECTION_ALLOCATIONS, *threshold[1:])
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()


def _keep_first(keep: int, records: list[UpdateRecord]) -> list[UpdateRecord]:
    """``records`` with every delivered update after the first ``keep`` (by arrival time, then selection
    order) marked ``overcommitted``: updates that arrive in the same instant as the K-th are not taken."""
    delivered = [i for i, rec in enumerate(records) if rec.outcome is Outcome.DELIVERED]
    late = sorted(delivered, key=lambda i: (records[i].end_s, i))[keep:]
    out = list(records)
    for i in late:
        out[i] = replace(records[i], outcome=Outcome.OVERCOMMITTED, failed_phase="upload")
    return out


def reached_target(stop: StopSpec, evaluation: EvalResult) -> str | None:
    """The stop target ``evaluation`` meets (``target_accuracy``: at or above; ``target_perplexity``: at or
    below), or None. With both set, the first one met counts."""
    if stop.target_accuracy is not None and evaluation.accuracy >= stop.target_accuracy:
        return "target_accuracy"
    perplexity = evaluation.perplexity
    if stop.target_perplexity is not None and perplexity is not None and perplexity <= stop.target_perplexity:
        return "target_perplexity"
    return None
