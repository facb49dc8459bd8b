"""Simulator speed at fleet scale: systems mode, asynchronous rounds, diurnal availability.

Builds ``Simulation`` exactly as a run does — real device profiles (phone_low / phone_mid / phone_high in
the phones_mixed shares), the cost model counted on a meta-device RoBERTa-large, FedBuff rounds,
deadline-aware selection (phones that cannot fit an update are never selected) — with
``training.mode: none`` (no model is trained or evaluated), and simulates 24 hours of N devices spread over
eight time zones, each online one window per local night. Reports host time, peak RSS, SimPy events and,
in the same process right after, three plain SimPy loops: one that processes the same number of events (the
same number of processes, each a loop of timeouts); one that simulates the same number of updates the
plainest way (a process of three timeouts per update); and a replay of the run's own timeline, each update
a timeout from its start to its end with a callback that records it, and no decision at all. The replay is
the least any SimPy simulator spends on this timeline, so its ratio is a floor for the simulator's.

    python benchmarks/fleet_scale.py [--devices 100000 1000000] [--hours 24] [--concurrency 1000]
                                     [--compute-scale 1]

``--compute-scale`` sets every group's ``compute_scale``: 11.2 gives the phones the optimized-kernel speed
their profiles had before they were anchored on a measured trainer (more, shorter updates per simulated day).
"""

from __future__ import annotations

import argparse
import gc
import resource
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import simpy

from fleetsim.core.rng import Streams
from fleetsim.core.updates import TrainConfig
from fleetsim.costs.cost_model import CostModel
from fleetsim.costs.proxies import MetaCounter
from fleetsim.io.recorder import Recorder
from fleetsim.policy.strategies import StrategyContext, make_strategy
from fleetsim.sim.simulation import Simulation
from fleetsim.spec.profiles import BUILTIN_PROFILES_DIR, load_profile
from fleetsim.spec.scenario import Scenario

SHARES = {"phone_low": 40, "phone_mid": 35, "phone_high": 18}  # phones_mixed's phones
ZONES_H = [-8.0, -5.0, -3.0, 0.0, 1.0, 3.0, 5.5, 8.0]


class NeverTrains:
    """Systems mode never calls the executor or the evaluator."""

    def run(self, *args: Any) -> list[Any]:
        raise AssertionError("systems mode trains nothing")

    def close(self) -> None:
        return None

    def evaluate(self, *args: Any) -> Any:
        raise AssertionError("systems mode evaluates nothing")

    evaluate_local = evaluate


def scenario(devices: int, hours: float, concurrency: int, buffer: int, compute_scale: float = 1.0) -> Scenario:
    total = sum(SHARES.values())
    counts = {p: devices * n // total for p, n in SHARES.items()}
    counts["phone_low"] += devices - sum(counts.values())
    diurnal = {"kind": "diurnal", "utc_offsets_h": ZONES_H}
    return Scenario.model_validate(
        {
            "name": "fleet_scale",
            "seed": 7,
            "fleet": [
                {"profile": p, "count": n, "availability": diurnal, "compute_scale": compute_scale}
                for p, n in counts.items()
            ],
            "model": {"id": "minilm-l6"},
            "dataset": {"id": "reuters-r8"},
            "training": {"local_steps": 8, "batch_size": 16, "seq_len": 64, "mode": "none"},
            "rounds": {"mode": "async", "clients_per_round": buffer, "concurrency": concurrency, "deadline_s": 3600},
            "stop": {"max_rounds": None, "max_sim_time_s": hours * 3600},
            "evaluation": {"personalized_devices": 0},
            "selection": {"name": "deadline_aware"},
        }
    )


def simulate(sc: Scenario, cost_model: CostModel) -> tuple[dict[str, float], list[tuple[float, float, int]]]:
    """The run's figures, and its timeline: (start s, duration s, update index) per update, by start."""
    streams = Streams(sc.seed)
    base = TrainConfig(sc.training.local_steps, sc.training.batch_size, sc.training.seq_len, 1e-3)
    block_of: dict[str, int | None] = {f"b{i}": i for i in range(6)}
    ctx = StrategyContext(
        base, cost_model, streams, block_of, 6, selection=sc.selection.name, deadline_s=sc.rounds.deadline_s
    )
    strategy = make_strategy("fedlora", {}, ctx)
    profiles = {p: load_profile(BUILTIN_PROFILES_DIR / f"{p}.yaml") for p in SHARES}
    composition = [(e.profile_id, e.group_profile(profiles[e.profile_id], Path.cwd()), e.count) for e in sc.fleet]
    never = NeverTrains()
    shard = np.arange(sc.training.batch_size)
    t0 = time.perf_counter()
    sim = Simulation(
        scenario=sc,
        composition=composition,
        shards=[shard] * sc.fleet_size,
        strategy=strategy,
        cost_model=cost_model,
        executor=never,  # type: ignore[arg-type]
        evaluator=never,
        streams=streams,
        recorder=Recorder(),
        initial_state={},
    )
    built = time.perf_counter()
    sim.run()
    ran = time.perf_counter()
    frames = sim.recorder.frames()
    done = time.perf_counter()
    events = next(sim.env._eid)  # SimPy's event counter: events scheduled so far
    updates = frames["updates"]
    return {
        "build_s": built - t0,
        "run_s": ran - built,
        "tables_s": done - ran,
        "total_s": done - t0,
        "events": events,
        "aggregations": len(frames["rounds"]),
        "updates": len(updates),
        "delivered": int((updates.outcome == "delivered").sum()),
        "availability_events": int(frames["events"].kind.isin(["online", "offline"]).sum()),
        "processes": len(updates),
    }, sorted(
        zip(updates.start_s.tolist(), (updates.end_s - updates.start_s).tolist(), range(len(updates)), strict=True)
    )


def bare_simpy(events: int, processes: int) -> float:
    """Host seconds of a bare SimPy loop with ``events`` events: ``processes`` processes, each a loop of
    timeouts, started a few at a time the way a server starts clients."""
    env = simpy.Environment()
    per = max(events // max(processes, 1), 1)

    def client(env: simpy.Environment, n: int):
        for _ in range(n):
            yield env.timeout(1.0)

    def server(env: simpy.Environment):
        for _ in range(processes):
            env.process(client(env, per - 2))  # process start, init and end are events too
            yield env.timeout(0.01)

    t0 = time.perf_counter()
    env.process(server(env))
    env.run()
    elapsed = time.perf_counter() - t0
    done = next(env._eid)
    return elapsed * events / done  # scaled to exactly ``events``


def bare_updates(updates: int) -> float:
    """Host seconds of a bare SimPy loop that simulates ``updates`` client updates the plainest way: one
    process per update (download, compute, upload: three timeouts), started a few at a time."""
    env = simpy.Environment()

    def client(env: simpy.Environment):
        for _ in range(3):
            yield env.timeout(1.0)

    def server(env: simpy.Environment):
        for _ in range(updates):
            env.process(client(env))
            yield env.timeout(0.01)

    t0 = time.perf_counter()
    env.process(server(env))
    env.run()
    return time.perf_counter() - t0


def replay(timeline: list[tuple[float, float, int]]) -> tuple[float, int]:
    """Host seconds and SimPy events of replaying ``timeline``: one server process that wakes at each start
    and schedules the update's end as a timeout whose callback appends its record; nothing is decided."""
    env = simpy.Environment()
    records: list[tuple[Any, float]] = []

    def arrived(event: simpy.Event) -> None:
        records.append((event.value, event.env.now))

    def server(env: simpy.Environment):
        for start, duration, index in timeline:
            if start > env.now:
                yield env.timeout(start - env.now)
            env.timeout(duration, index).callbacks.append(arrived)

    t0 = time.perf_counter()
    env.process(server(env))
    env.run()
    elapsed = time.perf_counter() - t0
    assert len(records) == len(timeline)
    return elapsed, next(env._eid)


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--concurrency", type=int, default=1000)
    parser.add_argument("--buffer", type=int, default=100)
    parser.add_argument("--compute-scale", type=float, default=1.0, help="every group's compute_scale")
    args = parser.parse_args()
    cost_model = CostModel(MetaCounter("roberta-large", "fp16", 8, 8, 16), 6, None)
    cost_model.step(16, 64)  # count once, outside the timed part
    print(
        "| devices | simulated h | host s (build / run / tables) | peak RSS GiB | updates (delivered) | "
        "aggregations | SimPy events | events/s | bare SimPy events/s | ratio per event | "
        "µs per update | bare SimPy µs per update | ratio per update | replay events | "
        "replay ratio per event |",
        flush=True,
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|", flush=True)
    for n in args.devices:
        gc.collect()
        out, timeline = simulate(scenario(n, args.hours, args.concurrency, args.buffer, args.compute_scale), cost_model)
        bare_s = bare_simpy(int(out["events"]), int(out["processes"]))
        rate, bare_rate = out["events"] / out["run_s"], out["events"] / bare_s
        per_update_us = out["run_s"] / out["updates"] * 1e6
        bare_per_update_us = bare_updates(int(out["updates"])) / out["updates"] * 1e6
        replay_s, replay_events = replay(timeline)
        replay_ratio = replay_s / bare_simpy(replay_events, int(out["processes"]))
        print(
            f"| {n:,} | {args.hours:g} | {out['total_s']:.1f} ({out['build_s']:.1f} / {out['run_s']:.1f} / "
            f"{out['tables_s']:.1f}) | {peak_rss_gib():.2f} | {out['updates']:,} ({out['delivered']:,}) | "
            f"{out['aggregations']:,} | {out['events']:,} | {rate:,.0f} | {bare_rate:,.0f} | "
            f"{bare_rate / rate:.2f}x | {per_update_us:.0f} | {bare_per_update_us:.1f} | "
            f"{per_update_us / bare_per_update_us:.1f}x | {replay_events:,} | {replay_ratio:.2f}x |",
            flush=True,
        )
    print(
        "\nratio per event = host time per SimPy event of the simulation / of a bare loop of as many events "
        "(the simulation spends one timeout per update, so this compares an update's bookkeeping with one "
        "bare event); ratio per update = host time per update of the simulation / of a bare SimPy process "
        f"per update (three timeouts); replay ratio per event = host time per SimPy event of the replay of the "
        f"same timeline (no decisions) / of a bare loop of as many events; python {sys.version.split()[0]}, "
        f"simpy {simpy.__version__}; compute_scale {args.compute_scale:g}; peak RSS is the process's so far "
        "(cumulative over rows)"
    )


if __name__ == "__main__":
    main()
