"""The discrete-event simulation: the only owner of the SimPy environment and of simulated time.

Each round the server process selects online devices, asks the strategy for their configs, and starts
one client process per device: download ▸ compute ▸ upload, with durations from the device's profile and
the update's cost. A client is lost if its device goes offline, it fails at random, its peak memory
exceeds the device's usable memory (``oom``) or the round deadline passes. When every client has
reported (or the deadline passed), the delivered updates are trained for real by the executor — host
time only, no simulated time — aggregated, and the global model is evaluated at the configured cadence.

Phase durations (DESIGN.md, cost model):
    download_s = download_bytes · 8 / (downlink_mbps · 1e6) + link_latency_s
    compute_s  = flops / train_flops_per_s · straggler_factor
    upload_s   = upload_bytes · 8 / (uplink_mbps · 1e6) + link_latency_s
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field

import numpy as np
import simpy
import torch

from fleetsim.core.dropout import sample_mask
from fleetsim.core.evaluation import EvalResult
from fleetsim.core.feedback import RoundFeedback
from fleetsim.core.rng import Streams
from fleetsim.core.updates import Outcome, TrainConfig, UpdateCost, UpdatePlan, UpdateRecord
from fleetsim.costs.cost_model import CostModel
from fleetsim.io.recorder import Recorder
from fleetsim.policy.strategies import Strategy
from fleetsim.spec.scenario import Scenario
from fleetsim.train.data import Task
from fleetsim.train.evaluation import Evaluator
from fleetsim.train.executors import Executor
from fleetsim.world.fleet import Conditions, Device, Fleet

__all__ = ["Simulation", "SimulationState", "phase_durations"]


def phase_durations(cost: UpdateCost, device: Device, cond: Conditions) -> tuple[float, float, float]:
    """(download_s, compute_s, upload_s) of an update on ``device`` under ``cond``."""
    p = device.profile
    download_s = cost.download_bytes * 8 / (cond.downlink_mbps * 1e6) + p.link_latency_s
    compute_s = cost.flops / p.train_flops_per_s * cond.straggler_factor
    upload_s = cost.upload_bytes * 8 / (cond.uplink_mbps * 1e6) + p.link_latency_s
    return download_s, compute_s, upload_s


@dataclass
class SimulationState:
    """Everything that carries across rounds (explicit, so a run can stop and resume at a round boundary)."""

    global_state: dict[str, torch.Tensor]
    round_idx: int = 0
    last_eval: EvalResult | None = None
    last_personalized: float | None = None
    time_to_target_s: float | None = None
    round_to_target: int | None = None
    stop_reason: str | None = None
    host_train_s: float = 0.0
    host_eval_s: float = 0.0
    history: list[tuple[float, float]] = field(default_factory=list)  # (sim time, accuracy)


class Simulation:
    """Runs a scenario's rounds in SimPy time; trains delivered updates for real."""

    def __init__(
        self,
        *,
        scenario: Scenario,
        fleet: Fleet,
        task: Task,
        strategy: Strategy,
        cost_model: CostModel,
        executor: Executor,
        evaluator: Evaluator,
        streams: Streams,
        recorder: Recorder,
        initial_state: dict[str, torch.Tensor],
        on_round: Callable[[SimulationState, float], None] | None = None,
    ):
        self.scenario = scenario
        self.fleet = fleet
        self.task = task
        self.strategy = strategy
        self.cost_model = cost_model
        self.executor = executor
        self.evaluator = evaluator
        self.streams = streams
        self.recorder = recorder
        self.state = SimulationState(global_state=initial_state)
        n_personal = min(scenario.evaluation.personalized_devices, len(fleet))
        self.personal_sample = sorted(
            int(i) for i in streams.generator("personal-eval").choice(len(fleet), size=n_personal, replace=False)
        )
        self.on_round = on_round
        self.env = simpy.Environment()

    def run(self) -> SimulationState:
        """Run until a stop condition holds; return the final state."""
        server = self.env.process(self._server())
        self.env.run(until=server)
        return self.state

    # ------------------------------------------------------------------------------------------ server

    def _server(self) -> Generator[simpy.Event, object, None]:
        sc, env, st = self.scenario, self.env, self.state
        while st.stop_reason is None:
            available = self.fleet.available(env.now)
            if len(available) < sc.rounds.min_available:
                self.recorder.event(env.now, st.round_idx, None, "wait", f"{len(available)} online")
                if sc.stop.max_sim_time_s is not None and env.now + sc.rounds.retry_s > sc.stop.max_sim_time_s:
                    st.stop_reason = "max_sim_time_s"
                    break
                yield env.timeout(sc.rounds.retry_s)
                continue
            yield from self._round(available)

    def _round(self, available: list[Device]) -> Generator[simpy.Event, object, None]:
        sc, env, st = self.scenario, self.env, self.state
        r = st.round_idx
        start_s = env.now
        selected = self.strategy.select(r, available, sc.rounds.clients_per_round)
        configs = self.strategy.configure(r, selected)
        plans = {d.id: self._plan(r, d, configs[d.id]) for d in selected}
        records: dict[int, UpdateRecord] = {}
        clients = [env.process(self._client(plans[d.id], d, records)) for d in selected]
        yield env.all_of(clients) | env.timeout(sc.rounds.deadline_s)
        for proc in clients:
            if proc.is_alive:
                proc.interrupt("deadline")
        yield env.all_of(clients)
        end_s = env.now

        ordered = [records[d.id] for d in selected]
        delivered = [plans[rec.device_id] for rec in ordered if rec.outcome is Outcome.DELIVERED]
        t0 = time.perf_counter()
        starts = [self.strategy.start_state(r, plan.device_id, st.global_state) for plan in delivered]
        results = self.executor.run(delivered, starts)
        st.host_train_s += time.perf_counter() - t0
        st.global_state = self.strategy.aggregate(r, st.global_state, results)

        evaluation, personalized = None, None
        last = self._is_last_round(r, end_s)
        if (r + 1) % sc.evaluation.every_rounds == 0 or last:
            t0 = time.perf_counter()
            evaluation = self.evaluator.evaluate(self.strategy.eval_state(st.global_state))
            personalized = self._personalized_accuracy()
            st.host_eval_s += time.perf_counter() - t0
            st.last_eval = evaluation
            st.last_personalized = personalized
            st.history.append((end_s, evaluation.accuracy))
            target = sc.stop.target_accuracy
            if target is not None and st.time_to_target_s is None and evaluation.accuracy >= target:
                st.time_to_target_s, st.round_to_target = end_s, r
                if not sc.stop.continue_after_target:
                    st.stop_reason = "target_accuracy"
        extras = self.strategy.observe(RoundFeedback(r, start_s, end_s, ordered, results, evaluation))
        extras.round_columns["personalized_accuracy"] = math.nan if personalized is None else personalized
        self.recorder.add_round(r, start_s, end_s, len(available), ordered, plans, results, evaluation, extras)
        st.round_idx += 1
        if st.stop_reason is None and last:
            st.stop_reason = self._limit_reason(r, end_s)
        if self.on_round is not None:
            self.on_round(st, end_s)

    def _plan(self, r: int, device: Device, config: TrainConfig) -> UpdatePlan:
        """Fix everything about an update before it starts, including which blocks run in each step."""
        mask = sample_mask(
            config.dropout,
            self.cost_model.model_blocks,
            config.local_steps,
            r,
            self.streams.generator("layers", r, device.id),
        )
        seed = self.streams.integer_seed("train", r, device.id)
        shard = self.task.shards[device.id]
        n_probe = min(self.strategy.configurator.probe_examples(), len(shard))
        probe = None
        if n_probe > 0:  # a fixed set of the device's examples, scored at full depth before and after
            probe = np.sort(self.streams.generator("probe", device.id).permutation(shard)[:n_probe])
        return UpdatePlan(r, device.id, config, seed, shard, mask, probe)

    def _personalized_accuracy(self) -> float | None:
        """Mean accuracy of each sampled device's own model on its local held-out examples."""
        if not self.personal_sample:
            return None
        accs = [
            self.evaluator.evaluate(
                self.strategy.device_state(d, self.state.global_state), self.task.local_test(d)
            ).accuracy
            for d in self.personal_sample
        ]
        return float(np.mean(accs))

    def _is_last_round(self, r: int, end_s: float) -> bool:
        return self._limit_reason(r, end_s) is not None

    def _limit_reason(self, r: int, end_s: float) -> str | None:
        stop = self.scenario.stop
        if stop.max_rounds is not None and r + 1 >= stop.max_rounds:
            return "max_rounds"
        if stop.max_sim_time_s is not None and end_s >= stop.max_sim_time_s:
            return "max_sim_time_s"
        return None

    # ------------------------------------------------------------------------------------------ client

    def _client(
        self, plan: UpdatePlan, device: Device, records: dict[int, UpdateRecord]
    ) -> Generator[simpy.Event, object, None]:
        env = self.env
        profile = device.profile
        cost = self.cost_model.update(plan, self.strategy.shared_names())
        cond = self.fleet.conditions(device, plan.round_idx)
        durations = phase_durations(cost, device, cond)
        start_s = env.now
        stop_at, reason = self._planned_loss(device, cost, cond, start_s, durations)
        done = {"download": 0.0, "compute": 0.0, "upload": 0.0}
        outcome, failed_phase = Outcome.DELIVERED, None
        phase, phase_start = "download", start_s
        try:
            for phase, duration in zip(done, durations, strict=True):
                phase_start = env.now
                if env.now + duration > stop_at:
                    yield env.timeout(stop_at - env.now)
                    done[phase] = env.now - phase_start
                    outcome, failed_phase = reason, phase
                    self.recorder.event(env.now, plan.round_idx, device.id, str(reason), phase)
                    break
                yield env.timeout(duration)
                done[phase] = duration
        except simpy.Interrupt:
            done[phase] = env.now - phase_start
            outcome, failed_phase = Outcome.DEADLINE, phase
            self.recorder.event(env.now, plan.round_idx, device.id, str(Outcome.DEADLINE), phase)
        dl_s, cp_s, ul_s = durations
        records[device.id] = UpdateRecord(
            round_idx=plan.round_idx,
            device_id=device.id,
            profile=device.profile_id,
            tier=device.tier,
            outcome=outcome,
            failed_phase=failed_phase,
            start_s=start_s,
            end_s=env.now,
            download_s=dl_s,
            compute_s=cp_s,
            upload_s=ul_s,
            downlink_mbps=cond.downlink_mbps,
            uplink_mbps=cond.uplink_mbps,
            straggler_factor=cond.straggler_factor,
            flops=cost.flops,
            peak_memory_bytes=cost.peak_memory_bytes,
            usable_memory_bytes=profile.usable_memory_bytes,
            active_blocks_mean=float(plan.mask.sum(axis=1).mean()),
            bytes_down=_partial_bytes(cost.download_bytes, done["download"], dl_s),
            bytes_up=_partial_bytes(cost.upload_bytes, done["upload"], ul_s),
            energy_j=profile.train_power_w * done["compute"]
            + profile.radio_power_w * (done["download"] + done["upload"]),
        )

    def _planned_loss(
        self,
        device: Device,
        cost: UpdateCost,
        cond: Conditions,
        start_s: float,
        durations: tuple[float, float, float],
    ) -> tuple[float, Outcome]:
        """The earliest moment the update will be lost, and why (``inf`` if it will not be)."""
        stop_at, reason = math.inf, Outcome.DELIVERED
        offline_at = self.fleet.online_until_s(device, start_s)
        if offline_at < stop_at:
            stop_at, reason = offline_at, Outcome.OFFLINE
        if cond.failure_fraction is not None:
            fail_at = start_s + cond.failure_fraction * sum(durations)
            if fail_at < stop_at:
                stop_at, reason = fail_at, Outcome.FAILURE
        if cost.peak_memory_bytes > device.profile.usable_memory_bytes:
            oom_at = start_s + durations[0]  # training starts, and cannot allocate
            if oom_at <= stop_at:
                stop_at, reason = oom_at, Outcome.OOM
        return stop_at, reason


def _partial_bytes(total: int, done_s: float, planned_s: float) -> int:
    if planned_s <= 0 or done_s >= planned_s:
        return total if done_s >= planned_s else 0
    return int(total * done_s / planned_s)
