"""The simulation with a stub trainer (no model, milliseconds): exact simulated times, losses with their
reasons and phases, waiting for devices, stopping at the target."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
import torch
from conftest import DETERMINISTIC, FIXTURE_PROFILES, deep_update, stub_cost_model

from fleetsim.core.evaluation import EvalResult
from fleetsim.core.rng import Streams
from fleetsim.core.updates import UpdatePlan, UpdateResult
from fleetsim.io.recorder import Recorder
from fleetsim.policy.strategies import StrategyContext, make_strategy
from fleetsim.sim.simulation import Simulation
from fleetsim.spec.profiles import Battery, Diurnal, load_profile
from fleetsim.spec.scenario import Scenario
from fleetsim.train.executors import Executor

BLOCK_OF: dict[str, int | None] = {**{f"b{i}": i for i in range(6)}, "head": None}
STEP_FLOPS = 7 * 10**9  # the stub counter's step with all 6 blocks: (6 + 1) · 1e9
TRANSFER_BYTES = 4 * 10**5  # the stub counter's trainable bytes


class StubExecutor(Executor):
    """Training without a model: every update returns its start state; records what it was asked to train."""

    def __init__(self) -> None:
        self.trained: list[tuple[int, int]] = []

    def run(
        self, plans: Sequence[UpdatePlan], states: Sequence[dict[str, torch.Tensor]], work: Sequence[float]
    ) -> list[UpdateResult]:
        self.trained.extend((p.round_idx, p.device_id) for p in plans)
        return [UpdateResult(p, dict(s), 1.0, 0.5, 0.7, 2.0, 1.0) for p, s in zip(plans, states, strict=True)]


class ScriptedEvaluator:
    """Accuracy 0.5 at the first evaluation, +0.1 at each next one."""

    def __init__(self) -> None:
        self.calls = 0

    def evaluate(self, state: dict[str, torch.Tensor]) -> EvalResult:
        self.calls += 1
        return EvalResult(0.4 + 0.1 * self.calls, 1.0, 100)

    def evaluate_local(self, state: dict[str, torch.Tensor], device_id: int) -> EvalResult:
        return EvalResult(0.5, 1.0, 10)


def simulate(
    fleet: dict[str, int],
    changes: dict[str, Any] | None = None,
    executor: StubExecutor | None = None,
    profile_changes: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Run a deterministic scenario on a fleet of fixture profiles with the stub trainer; return its tables
    (``profile_changes``: fields to replace in a fixture profile)."""
    raw = deep_update(DETERMINISTIC, changes or {})
    raw["fleet"] = [{"profile": p, "count": n} for p, n in fleet.items()]
    scenario = Scenario.model_validate(raw)
    streams = Streams(scenario.seed)
    cost_model = stub_cost_model(6)
    base = _base(scenario)
    ctx = StrategyContext(
        base,
        cost_model,
        streams,
        BLOCK_OF,
        6,
        selection=scenario.selection.name,
        selection_options=scenario.selection.options,
        deadline_s=scenario.rounds.deadline_s,
    )
    strat = make_strategy(scenario.strategy.name, scenario.strategy.options, ctx)
    executor, recorder = executor or StubExecutor(), Recorder()
    sim = Simulation(
        scenario=scenario,
        composition=[
            (p, load_profile(FIXTURE_PROFILES / f"{p}.yaml").model_copy(update=(profile_changes or {}).get(p, {})), n)
            for p, n in fleet.items()
        ],
        shards=[np.arange(20)] * sum(fleet.values()),
        strategy=strat,
        cost_model=cost_model,
        executor=executor,
        evaluator=ScriptedEvaluator(),
        streams=streams,
        recorder=recorder,
        initial_state={n: torch.zeros(2) for n in BLOCK_OF},
    )
    state = sim.run()
    strat.close()
    return {**recorder.frames(), "state": state, "trained": executor.trained}


def _base(scenario: Scenario):
    from fleetsim.core.updates import TrainConfig

    t = scenario.training
    return TrainConfig(t.local_steps, t.batch_size, t.seq_len, t.optimizer.lr, t.optimizer.name)


def _phases(flops_per_s: float, down_mbps: float, up_mbps: float, latency_s: float) -> tuple[float, float, float]:
    return (
        TRANSFER_BYTES * 8 / (down_mbps * 1e6) + latency_s,
        2 * STEP_FLOPS / flops_per_s,  # 2 local steps
        TRANSFER_BYTES * 8 / (up_mbps * 1e6) + latency_s,
    )


FAST = _phases(1e11, 10.0, 5.0, 0.0)  # det_fast: 0.32 + 0.14 + 0.64 s
SLOW = _phases(1e10, 2.0, 1.0, 0.5)  # det_slow: 2.1 + 1.4 + 3.7 s


def test_round_ends_when_the_slowest_device_reports_at_exactly_the_summed_phases():
    out = simulate({"det_fast": 2, "det_slow": 2})
    updates, rounds = out["updates"], out["rounds"]
    assert (updates.outcome == "delivered").all() and (updates.flops == 2 * STEP_FLOPS).all()
    for row in updates.itertuples():
        expected = FAST if row.profile == "det_fast" else SLOW
        assert (row.download_s, row.compute_s, row.upload_s) == expected
        assert row.end_s == ((row.start_s + expected[0]) + expected[1]) + expected[2]
    first_end = ((0.0 + SLOW[0]) + SLOW[1]) + SLOW[2]
    assert rounds.start_s.tolist() == [0.0, first_end]
    assert rounds.end_s.tolist() == [first_end, ((first_end + SLOW[0]) + SLOW[1]) + SLOW[2]]
    assert first_end == pytest.approx(2.1 + 1.4 + 3.7)
    for row in updates.itertuples():  # energy = power × busy time (det_fast 10 / 1 W, det_slow 3 / 1.5 W)
        train_w, radio_w = (10.0, 1.0) if row.profile == "det_fast" else (3.0, 1.5)
        assert row.energy_j == pytest.approx(train_w * row.compute_s + radio_w * (row.download_s + row.upload_s))
    assert sorted(out["trained"]) == sorted((r, d) for r in (0, 1) for d in range(4))


def test_deadline_cuts_slow_devices_exactly_at_the_deadline_mid_upload():
    out = simulate({"det_fast": 2, "det_slow": 2}, {"rounds": {"deadline_s": 4.0}, "stop": {"max_rounds": 1}})
    updates, rounds, events = out["updates"], out["rounds"], out["events"]
    slow = updates[updates.profile == "det_slow"]
    assert rounds.end_s.tolist() == [4.0] and rounds.lost_deadline.tolist() == [2]
    assert (slow.outcome == "deadline").all() and (slow.end_s == 4.0).all() and (slow.failed_phase == "upload").all()
    # 0.5 s of the 3.7 s upload done when the deadline passed: that share of the bytes went up.
    assert (slow.bytes_up == int(TRANSFER_BYTES * (4.0 - SLOW[0] - SLOW[1]) / SLOW[2])).all()
    assert out["trained"] == [(0, 0), (0, 1)], "lost updates are never trained"
    assert events[events.kind == "deadline"].time_s.tolist() == [4.0, 4.0]


def test_an_update_that_does_not_fit_fails_oom_when_training_would_start():
    out = simulate(
        {"det_tiny_memory": 1, "det_fast": 1}, {"rounds": {"clients_per_round": 2}, "stop": {"max_rounds": 1}}
    )
    oom = out["updates"].set_index("profile").loc["det_tiny_memory"]
    assert oom.outcome == "oom" and oom.failed_phase == "compute"
    assert oom.end_s == oom.start_s + oom.download_s and oom.bytes_up == 0 and oom.energy_j == oom.download_s * 1.0


def test_droppeft_never_selects_a_device_no_arm_fits():
    changes = {"rounds": {"clients_per_round": 2}, "stop": {"max_rounds": 3}}
    changes["strategy"] = {"name": "droppeft", "options": {"policy": "ucb1"}}
    out = simulate({"det_tiny_memory": 2, "det_fast": 2}, changes)
    assert set(out["updates"].profile) == {"det_fast"} and (out["updates"].outcome == "delivered").all()


def test_waits_for_enough_devices_and_stops_at_the_time_limit():
    changes = {"rounds": {"min_available": 5, "retry_s": 60.0}, "stop": {"max_rounds": None, "max_sim_time_s": 200.0}}
    out = simulate({"det_fast": 4}, changes)
    waits = out["events"][out["events"].kind == "wait"]
    assert waits.time_s.tolist() == [0.0, 60.0, 120.0, 180.0] and set(waits.detail) == {"4 online"}
    assert out["state"].stop_reason == "max_sim_time_s" and out["rounds"].empty


def test_stops_at_the_first_evaluation_at_or_above_the_target():
    out = simulate(
        {"det_fast": 2}, {"rounds": {"clients_per_round": 2}, "stop": {"max_rounds": 10, "target_accuracy": 0.75}}
    )
    state, rounds = out["state"], out["rounds"]
    assert rounds.accuracy.tolist() == pytest.approx([0.5, 0.6, 0.7, 0.8])
    assert state.stop_reason == "target_accuracy" and state.round_idx_to_target == 3
    assert state.time_to_target_s == rounds.end_s.iloc[3]


def test_a_round_with_nobody_selectable_waits_like_any_other():
    changes = {"strategy": {"name": "droppeft"}, "rounds": {"clients_per_round": 1, "retry_s": 50.0}}
    changes["stop"] = {"max_rounds": None, "max_sim_time_s": 120.0}
    out = simulate({"det_tiny_memory": 2}, changes)
    waits = out["events"][out["events"].kind == "wait"]
    assert waits.time_s.tolist() == [0.0, 50.0, 100.0] and out["rounds"].empty
    assert out["state"].stop_reason == "max_sim_time_s"


def test_the_recorded_dropout_ratio_is_the_executed_one():
    # PLD keeps every block in the first round (θ(0) = 1) although its configured ratio is 0.4.
    changes = {"strategy": {"name": "pld", "options": {"ratio": 0.4, "gamma": 1.0}}, "stop": {"max_rounds": 3}}
    updates = simulate({"det_fast": 4}, changes)["updates"]
    first = updates[updates["round"] == 1]
    assert (first.configured_dropout_ratio == 0.4).all() and (first.dropout_ratio == 0.0).all()
    assert (first.active_blocks_mean == 6.0).all()
    later = updates[updates["round"] == 3]
    assert ((1 - later.active_blocks_mean / 6) == later.dropout_ratio).all() and later.dropout_ratio.mean() > 0


def test_overcommit_keeps_exactly_the_first_k_arrivals_and_never_trains_the_rest():
    # 2 fast + 3 slow devices, K = 2, o = 1.5: all 5 selected; the two fast ones arrive at 1.1 s.
    changes = {"rounds": {"mode": "overcommit", "clients_per_round": 2, "overcommit": 1.5}, "stop": {"max_rounds": 2}}
    out = simulate({"det_fast": 2, "det_slow": 3}, changes)
    updates, rounds = out["updates"], out["rounds"]
    fast_end = (FAST[0] + FAST[1]) + FAST[2]
    assert rounds.n_selected.tolist() == [5, 5] and rounds.n_delivered.tolist() == [2, 2]
    assert rounds.end_s.iloc[0] == fast_end and rounds.lost_overcommitted.tolist() == [3, 3]
    first = updates[updates["round"] == 1]
    assert (first[first.profile == "det_fast"].outcome == "delivered").all()
    late = first[first.profile == "det_slow"]
    assert (late.outcome == "overcommitted").all() and (late.end_s == fast_end).all()
    assert (late.failed_phase == "download").all()  # 1.1 s of a 2.1 s download
    assert sorted(out["trained"]) == [(r, d) for r in (0, 1) for d in (0, 1)], "overcommitted updates never train"


def test_overcommit_takes_only_k_of_updates_arriving_in_the_same_instant():
    changes = {"rounds": {"mode": "overcommit", "clients_per_round": 3, "overcommit": 0.5}, "stop": {"max_rounds": 1}}
    out = simulate({"det_fast": 5}, changes)  # ⌈1.5 · 3⌉ = 5 identical devices arrive together
    updates = out["updates"]
    assert updates.outcome.tolist() == ["delivered"] * 3 + ["overcommitted"] * 2
    assert out["trained"] == [(0, 0), (0, 1), (0, 2)]


@pytest.mark.parametrize("strategy", ["fedlora", "droppeft"])
def test_deadline_aware_selection_never_selects_a_device_that_cannot_finish(strategy):
    # det_slow's update takes 7.2 s (> the 5 s deadline); det_tiny_memory fits no configuration.
    changes = {
        "rounds": {"clients_per_round": 4, "deadline_s": 5.0},
        "stop": {"max_rounds": 3},
        "selection": {"name": "deadline_aware"},
        "strategy": {"name": strategy},
    }
    out = simulate({"det_fast": 2, "det_slow": 2, "det_tiny_memory": 2}, changes)
    updates = out["updates"]
    assert set(updates.profile) == {"det_fast"} and (updates.outcome == "delivered").all()
    assert len(updates) == 6
    uniform = simulate({"det_fast": 2, "det_slow": 2, "det_tiny_memory": 2}, {**changes, "selection": {}})
    assert "det_slow" in set(uniform["updates"].profile), "uniform selection does pick the slow devices"


def test_deadline_aware_uses_its_own_limit_below_the_deadline():
    changes = {
        "rounds": {"clients_per_round": 4, "deadline_s": 1000.0},
        "stop": {"max_rounds": 2},
        "selection": {"name": "deadline_aware", "options": {"max_update_s": 5.0}},
    }
    out = simulate({"det_fast": 2, "det_slow": 2}, changes)
    assert set(out["updates"].profile) == {"det_fast"}


def test_oort_explores_then_exploits_and_is_deterministic():
    changes = {"rounds": {"clients_per_round": 2}, "stop": {"max_rounds": 6}, "selection": {"name": "oort"}}
    fleet = {"det_fast": 3, "det_slow": 3}
    first, again = simulate(fleet, changes), simulate(fleet, changes)
    assert first["updates"].device_id.tolist() == again["updates"].device_id.tolist()
    per_round = first["updates"].groupby("round").device_id.apply(list)
    assert all(len(ids) == 2 for ids in per_round)
    seen = set(per_round.iloc[0]) | set(per_round.iloc[1]) | set(per_round.iloc[2])
    assert len(seen) == 6, "every device is tried before any is selected twice (ε = 0.9 of 2 seats explore)"


class PlusOneExecutor(StubExecutor):
    """Every update adds 1 to every tensor of its start state."""

    def run(
        self, plans: Sequence[UpdatePlan], states: Sequence[dict[str, torch.Tensor]], work: Sequence[float]
    ) -> list[UpdateResult]:
        results = super().run(plans, states, work)
        for res in results:
            res.state = {n: t + 1.0 for n, t in res.state.items()}
        return results


def _async(max_staleness: int, executor: StubExecutor | None = None) -> dict[str, Any]:
    changes = {
        "rounds": {"mode": "async", "clients_per_round": 1, "concurrency": 2, "max_staleness": max_staleness},
        "stop": {"max_rounds": 8},
        "evaluation": {"every_rounds": 4},
    }
    return simulate({"det_fast": 1, "det_slow": 1}, changes, executor)


def test_async_aggregates_every_arrival_with_fedbuff_staleness_weights_on_a_hand_made_timeline():
    # K = 1, two in flight: the fast device (1.1 s per update) is redispatched after each aggregation; the
    # slow one (7.2 s) started from version 0 and arrives after six aggregations.
    out = _async(max_staleness=10)
    rounds, updates = out["rounds"], out["updates"]
    fast_ends, t = [], 0.0
    for _ in range(7):
        t = ((t + FAST[0]) + FAST[1]) + FAST[2]
        fast_ends.append(t)
    slow_end = ((0.0 + SLOW[0]) + SLOW[1]) + SLOW[2]
    assert rounds.end_s.tolist() == [*fast_ends[:6], slow_end, fast_ends[6]]
    slow = updates[updates.profile == "det_slow"].iloc[0]
    assert slow["round"] == 7 and slow.outcome == "delivered" and slow.staleness == 6
    assert slow.staleness_weight == pytest.approx(7**-0.5)
    last = updates[updates["round"] == 8].iloc[0]
    assert last.profile == "det_fast" and last.staleness == 1 and last.staleness_weight == pytest.approx(2**-0.5)
    assert (updates[updates["round"] < 7].staleness == 0).all()
    assert (0, 1) in out["trained"] and len(out["trained"]) == 8, "trained from the version it started from"


def test_async_drops_an_update_staler_than_the_maximum_and_never_trains_it():
    out = _async(max_staleness=3)
    updates = out["updates"]
    slow = updates[updates.profile == "det_slow"].iloc[0]
    assert slow.outcome == "stale" and not slow.trained
    assert all(d == 0 for _, d in out["trained"]), "the stale update is never trained"
    # No aggregation at 7.2 s: the stale update shares a window with the fast one arriving at 7.7 s.
    assert slow["round"] == 7 and out["rounds"].n_selected.iloc[6] == 2


def test_systems_mode_trains_nothing_and_keeps_the_simulated_times():
    real = simulate({"det_fast": 2, "det_slow": 2}, {"stop": {"max_rounds": 3}})
    systems = simulate({"det_fast": 2, "det_slow": 2}, {"stop": {"max_rounds": 3}, "training": {"mode": "none"}})
    assert systems["trained"] == [] and systems["rounds"].accuracy.isna().all()
    columns = ["round", "device_id", "outcome", "start_s", "end_s", "flops", "energy_j"]
    assert systems["updates"][columns].equals(real["updates"][columns])
    assert systems["rounds"].end_s.tolist() == real["rounds"].end_s.tolist()


def test_async_applies_each_update_as_a_staleness_weighted_delta_to_the_current_model():
    # Rounds 1-6: the fast device's +1 from the current model (staleness 0). Round 7: the slow device's +1
    # from version 0, six versions stale. Round 8: the fast device's +1 from version 6, one stale.
    out = _async(max_staleness=10, executor=PlusOneExecutor())
    final = out["state"].global_state["b0"]
    assert torch.allclose(final, torch.full((2,), 6.0 + 7**-0.5 + 2**-0.5, dtype=final.dtype))


def test_an_update_whose_battery_runs_low_is_lost_offline_mid_compute_at_the_exact_moment():
    # det_fast: download 0.32 s at 1 W, compute 0.14 s at 10 W. Battery 3.6 J, leave at 1.8 J, start at 2.7 J,
    # no idle drain, charging only 12:00-12:30 UTC: after the download 2.38 J, 0.058 s of compute to 1.8 J.
    battery = Battery(
        capacity_wh=0.001,
        leave_below_frac=0.5,
        idle_drain_w=0.0,
        charge_w=1.0,
        charging=Diurnal(kind="diurnal", start_h=12.0, start_sd_h=0.0, hours=0.5, hours_sd=0.0),
        start_min_frac=0.75,
        start_max_frac=0.75,
    )
    out = simulate({"det_fast": 2, "det_slow": 2}, profile_changes={"det_fast": {"battery": battery}})
    updates = out["updates"]
    fast = updates[updates.profile == "det_fast"]
    assert fast["round"].tolist() == [1, 1], "with its battery at the threshold it does not come back in round 2"
    assert (fast.outcome == "offline").all() and (fast.failed_phase == "compute").all()
    assert (fast.offline_cause == "battery").all() and (
        updates[updates.profile == "det_slow"].offline_cause == ""
    ).all()
    assert fast.end_s.tolist() == pytest.approx([FAST[0] + 0.058] * 2)
    assert fast.energy_j.tolist() == pytest.approx([0.9] * 2), "2.7 J − 1.8 J"
    assert (0, 0) not in out["trained"] and (0, 2) in out["trained"]


def test_a_scheduled_outage_cuts_the_updates_of_its_tier_when_it_starts():
    outage = {"windows_s": [[1.0, 100.0]], "tiers": ["test-slow"]}
    out = simulate({"det_fast": 2, "det_slow": 2}, {"outages": [outage], "stop": {"max_rounds": 1}})
    updates = out["updates"]
    slow = updates[updates.profile == "det_slow"]
    assert (slow.outcome == "offline").all() and (slow.end_s == 1.0).all() and (slow.failed_phase == "download").all()
    assert (slow.offline_cause == "outage").all()
    assert (updates[updates.profile == "det_fast"].outcome == "delivered").all()


def test_an_async_window_that_holds_every_device_closes_with_what_it_has():
    # Every update fails, so no window ever gets its K = 2 deliveries; a device takes part once per window,
    # so once both devices are in it (none in flight) nobody can fill it: it closes at the second failure.
    stop = {"max_rounds": 3, "max_sim_time_s": 1000.0}  # (without closing, it would wait until then)
    changes = {"rounds": {"mode": "async", "clients_per_round": 2, "concurrency": 2}, "stop": stop}
    out = simulate({"det_fast": 2}, changes, profile_changes={"det_fast": {"failure_prob_per_update": 1.0}})
    rounds, updates = out["rounds"], out["updates"]
    assert rounds.n_delivered.tolist() == [0, 0, 0] and rounds.lost_failure.tolist() == [2, 2, 2]
    assert rounds.end_s.tolist() == updates.groupby("round").end_s.max().tolist()
    assert out["trained"] == []
