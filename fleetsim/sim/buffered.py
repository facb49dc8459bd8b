"""Asynchronous rounds with a buffer (FedBuff; Nguyen et al., AISTATS 2022, Algorithm 1).

The server keeps ``concurrency`` updates in flight. Whenever slots are free it draws candidates among the
online devices not busy, lets the strategy select and configure them (the round index is the number of
aggregations so far: the global version they start from), and starts their client processes. Every ended
update — delivered or lost — joins the current window; a delivered update that started more than
``max_staleness`` versions ago is dropped as ``stale``. When the window holds ``clients_per_round``
delivered updates, they are trained for real from the global state of the version each started from, and
aggregated into the current global state with staleness weights:

    x ← x + Σ_i a_i · w(s_i) · (x_i − x_{v_i}),   w(s) = (1 + s)^−exponent     (FedBuff §3, Eq. 2)

where a_i are the strategy's aggregation weights (samples × steps, per block), s_i = version − v_i. The
strategy computes the a_i: it aggregates, into ``x``, states ``x + w(s_i) · (x_i − x_{v_i})``. One window
is one row of ``rounds.parquet``; the strategy observes it as a round. A device is busy from its dispatch
to the end of the window its update ended in, so it appears at most once per window; so a window that holds
every device of the fleet, none in flight, can never fill, and closes with the updates it has.

Candidates are all online idle devices for fleets up to :data:`EXACT_POOL_MAX`; in larger fleets a pool of
devices drawn uniformly (rejection sampling on online and idle), so a dispatch costs O(pool), not O(fleet).
When a search leaves slots empty (too few online idle devices that the strategy takes), later wake-ups search
only for the slots freed since, and all empty slots again when the retry timer fires: so a saturated fleet
costs O(pool) per ended update, not O(empty slots). A search that fills every slot is searched the same way
either way.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Protocol

import simpy

from fleetsim.core.rounds import RoundExtras, RoundFeedback, round_number
from fleetsim.core.updates import Outcome, UpdatePlan, UpdateRecord
from fleetsim.sim.client import Attempt, start_update
from fleetsim.sim.planning import plan_update
from fleetsim.world.fleet import Device

if TYPE_CHECKING:
    import numpy as np
    import torch

    from fleetsim.core.evaluation import EvalResult
    from fleetsim.core.rng import Streams
    from fleetsim.costs.cost_model import CostModel
    from fleetsim.io.recorder import Recorder
    from fleetsim.policy.strategies import Strategy
    from fleetsim.sim.server_link import ServerLink
    from fleetsim.sim.state import SimulationState
    from fleetsim.spec.scenario import Scenario
    from fleetsim.train.executors import Executor
    from fleetsim.world.fleet import Fleet


class Simulation(Protocol):
    """What the asynchronous server uses of :class:`fleetsim.sim.simulation.Simulation`."""

    scenario: Scenario
    env: simpy.Environment
    state: SimulationState
    strategy: Strategy
    fleet: Fleet
    streams: Streams
    shards: Sequence[np.ndarray]
    cost_model: CostModel
    recorder: Recorder
    executor: Executor
    link: ServerLink | None
    stop_requested: bool
    on_round: Callable[[SimulationState, float], None] | None

    def limit_reason(self, r: int, end_s: float) -> str | None: ...

    def evaluate(self, end_s: float, r: int) -> tuple[EvalResult, float | None]: ...

    def round_ended(self, end_s: float, last: bool) -> None: ...


__all__ = ["EXACT_POOL_MAX", "buffered_server"]

EXACT_POOL_MAX = 4096  # fleets up to this size draw candidates from every online idle device
POOL_PER_SEAT = 4  # larger fleets: candidates drawn per free slot
TRIES_PER_SEAT = 64  # ... out of at most this many random devices per free slot


@dataclass
class _InFlight:
    device: Device
    plan: UpdatePlan
    flops: int
    version: int  # the global version it started from


def staleness_weight(staleness: int, exponent: float) -> float:
    """FedBuff's polynomial staleness weight ``(1 + s)^-exponent``."""
    return float((1 + staleness) ** -exponent)


def buffered_server(sim: Simulation) -> Generator[simpy.Event, object, None]:
    """The asynchronous server process (see the module docstring)."""
    sc, env, st, strategy = sim.scenario, sim.env, sim.state, sim.strategy
    rounds = sc.rounds
    concurrency = rounds.concurrency or 2 * rounds.clients_per_round
    systems_only = not sc.training.trains
    in_flight: dict[int, _InFlight] = {}
    window: list[tuple[UpdateRecord, _InFlight]] = []
    ended: list[tuple[int, Attempt]] = []
    busy: set[int] = set()
    versions: dict[int, dict[str, torch.Tensor]] = {st.round_idx: st.global_state}
    wake = [env.event()]  # the server sleeps on this: an update ended, a retry is due, or the time limit
    retry = [0]  # the retry timeout that counts (one per wait; earlier ones wake nobody)
    serial = 0
    # One stream each for drawing candidates and for selecting among them, drawn in dispatch order (an
    # asynchronous run does not resume, so their states are never saved).
    tries = _random_ids(sim.streams.generator("dispatch"), len(sim.fleet))
    choose = sim.streams.generator("selection-async")
    window_start_s = env.now
    delivered = 0  # in the current window

    def poke() -> None:
        if not wake[0].triggered:
            wake[0].succeed()

    def on_end(key: int) -> Callable[[Attempt], None]:
        def record(attempt: Attempt) -> None:
            ended.append((key, attempt))
            poke()

        return record

    def retry_due(token: int) -> Callable[[simpy.Event], None]:
        def due(_: simpy.Event) -> None:
            if retry[0] == token:
                retried[0] = True
                poke()

        return due

    retried = [True]  # search every empty slot at this wake-up (the first, and each retry)
    freed = 0  # slots freed since the last search

    limit = sc.stop.max_sim_time_s
    if limit is not None:
        env.timeout(max(limit - env.now, 0.0)).callbacks.append(lambda _: poke())
    while st.stop_reason is None and not sim.stop_requested:
        free = concurrency - len(in_flight)
        if free > 0:
            seats = free if retried[0] else min(free, freed)
            candidates = _candidates(sim, busy, free, tries, seats) if seats else []
            selected = strategy.select(st.round_idx, candidates, free, choose) if candidates else []
            if selected:
                assignment = strategy.configure(st.round_idx, selected)
                for d in selected:
                    serial += 1
                    plan = plan_update(
                        st.round_idx,
                        d.id,
                        assignment.configs[d.id],
                        sim.shards[d.id],
                        sim.cost_model.model_blocks,
                        sim.streams,
                        serial,
                        trains=not systems_only,
                    )
                    cost = sim.cost_model.update(plan)
                    cond = sim.fleet.conditions(d, st.round_idx, serial)
                    in_flight[serial] = _InFlight(d, plan, cost.flops, st.round_idx)
                    busy.add(d.id)
                    attempt = Attempt(plan, d, cost, cond, sim.fleet, env.now)
                    start_update(env, attempt, on_end(serial), sim.link)
            elif not in_flight:
                sim.recorder.event(env.now, st.round_idx, None, "wait", "nobody to dispatch")
        retried[0], freed = False, 0
        retry[0] += 1
        if len(in_flight) < concurrency:
            env.timeout(rounds.retry_s).callbacks.append(retry_due(retry[0]))
        yield wake[0]
        wake[0] = env.event()
        while ended:
            key, attempt = ended.pop(0)
            flight = in_flight.pop(key)
            freed += 1
            outcome = attempt.outcome
            if outcome is Outcome.DELIVERED and st.round_idx - flight.version > rounds.max_staleness:
                outcome = Outcome.STALE
            rec = attempt.finish(env.now, outcome, sim.recorder.event, st.round_idx)
            window.append((rec, flight))
            delivered += rec.outcome is Outcome.DELIVERED
            stuck = not in_flight and len(busy) >= len(sim.fleet)  # every device is held by this window
            if delivered >= rounds.clients_per_round or stuck:
                _aggregate(sim, window, versions, window_start_s, systems_only)
                busy.difference_update(r.device_id for r, _ in window)
                window, window_start_s, delivered = [], env.now, 0
                versions[st.round_idx] = st.global_state
                live = {f.version for f in in_flight.values()} | {st.round_idx}
                for v in [v for v in versions if v not in live]:
                    del versions[v]
                if st.stop_reason is not None or sim.stop_requested:
                    break
        if st.stop_reason is None and limit is not None and env.now >= limit:
            st.stop_reason = "max_sim_time_s"  # updates still in flight or in the window are not recorded


def _candidates(sim: Simulation, busy: set[int], free: int, tries: Iterator[int], seats: int) -> list[Device]:
    """Online, idle devices to select ``free`` from, in id order (see the module docstring); ``tries``:
    random device ids, from the server's dispatch stream; ``seats``: how many of the free slots a large
    fleet's pool is drawn for."""
    fleet, now = sim.fleet, sim.env.now
    if len(fleet) <= EXACT_POOL_MAX:
        return [d for d in fleet.available(now) if d.id not in busy]
    want, picked, devices, plain = POOL_PER_SEAT * seats, {}, fleet.devices, fleet.plain
    for _ in range(TRIES_PER_SEAT * seats):
        device_id = next(tries)
        if device_id in busy or device_id in picked:
            continue
        d = devices[device_id]
        if d.online if plain and d.change_at_s > now else fleet.is_online(d, now):  # is_online, without a call
            picked[device_id] = d
            if len(picked) >= want:
                break
    return [picked[i] for i in sorted(picked)]


def _random_ids(rng: np.random.Generator, n: int) -> Iterator[int]:
    """Device ids drawn uniformly from ``n``, without end (drawn a few thousand at a time)."""
    while True:
        yield from rng.integers(0, n, size=4096).tolist()


def _aggregate(
    sim: Simulation,
    window: list[tuple[UpdateRecord, _InFlight]],
    versions: dict[int, dict[str, torch.Tensor]],
    start_s: float,
    systems_only: bool,
) -> None:
    """Train the window's delivered updates, aggregate them with staleness weights, evaluate, record."""
    env, st, strategy, rounds = sim.env, sim.state, sim.strategy, sim.scenario.rounds
    r, end_s = st.round_idx, env.now
    records = [rec for rec, _ in window]  # each in the window it ended in (staleness: since when)
    plans = {rec.device_id: f.plan for rec, f in window}
    delivered = [(rec, f) for rec, f in window if rec.outcome is Outcome.DELIVERED]
    weights = {rec.device_id: staleness_weight(r - f.version, rounds.staleness_exponent) for rec, f in delivered}
    results = []
    round_columns: dict[str, object] = {}
    if not systems_only:
        t0 = time.perf_counter()
        starts = [strategy.start_state(f.plan.device_id, versions[f.version]) for _, f in delivered]
        results = sim.executor.run([f.plan for _, f in delivered], starts, [f.flops for _, f in delivered])
        st.host_train_s += time.perf_counter() - t0
        current = st.global_state
        weighted = []
        for res, start, (_, f) in zip(results, starts, delivered, strict=True):
            w = weights[f.device.id]
            state = {n: current[n] + w * (t - start[n]) if n in current else t for n, t in res.state.items()}
            weighted.append(replace(res, state=state))
        aggregate = strategy.aggregate(r, current, weighted)
        st.global_state = aggregate.global_state
        round_columns.update(aggregate.round_columns)
    evaluation, personalized = None, None
    last = sim.limit_reason(r, end_s) is not None
    if not systems_only and (round_number(r) % sim.scenario.evaluation.every_rounds == 0 or last):
        evaluation, personalized = sim.evaluate(end_s, r)
    observed = strategy.observe(RoundFeedback(r, start_s, end_s, records, plans, results, evaluation))
    columns = {
        rec.device_id: {
            **observed.update_columns.get(rec.device_id, {}),
            "staleness": r - f.version,
            "staleness_weight": weights.get(rec.device_id, math.nan),
        }
        for rec, f in window
    }
    extras = RoundExtras(
        update_columns=columns,
        round_columns={
            **round_columns,
            **observed.round_columns,
            "personalized_accuracy": math.nan if personalized is None else personalized,
        },
        tables=observed.tables,
    )
    sim.recorder.add_round(r, start_s, end_s, -1, records, plans, results, evaluation, extras)
    sim.round_ended(end_s, last)
