"""Every strategy: one row each; runs the tiny scenario; its state round-trips through state_dict so that a
restored strategy continues exactly as the original (what a checkpoint needs)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import FIXTURE_PROFILES, stub_cost_model

from fleetsim.core.evaluation import EvalResult
from fleetsim.core.rng import Streams
from fleetsim.core.rounds import RoundFeedback
from fleetsim.core.updates import Outcome, TrainConfig, UpdateRecord, UpdateResult
from fleetsim.policy.strategies import STRATEGIES, StrategyContext, make_strategy
from fleetsim.sim.planning import plan_update
from fleetsim.spec.profiles import load_profile
from fleetsim.world.fleet import Device

# One row per registered strategy: its options in the tests below (adding a strategy: one file, one row).
ROWS: dict[str, dict] = {
    "fedlora": {},
    "layerdrop": {"ratio": 0.5, "schedule": "keep_ends", "anneal_rounds": 6},
    "pld": {"ratio": 0.4},
    "fedadapter": {"trial_every": 2},
    "droppeft": {"policy": "epsilon_greedy", "ptls": {"mode": "disagreement", "choose_after_rounds": 2}},
    "droppeft_no_configurator": {},
    "droppeft_no_ptls": {"policy": "thompson", "reward": "accuracy_gain_per_s"},
}


def test_every_registered_strategy_has_a_row():
    assert set(ROWS) == set(STRATEGIES)


@pytest.mark.parametrize("name", sorted(ROWS))
def test_every_strategy_runs_the_tiny_scenario(name, write_scenario, run):
    result, frames = run(write_scenario({"strategy": {"name": name, "options": ROWS[name]}, "stop": {"max_rounds": 2}}))
    assert result.summary["strategy"] == name
    assert len(frames["rounds"]) == 2 and frames["rounds"].accuracy.notna().all()
    assert (frames["updates"].outcome == "delivered").all()
    assert result.summary["personalized_accuracy"] is not None


BLOCK_OF: dict[str, int | None] = {**{f"b{i}": i for i in range(6)}, "head": None}
BASE = TrainConfig(local_steps=3, batch_size=8, seq_len=32, lr=0.01)


def _context() -> StrategyContext:
    cm = stub_cost_model(6, {n: 400 for n in BLOCK_OF})
    score = lambda state: EvalResult(float(sum(t.sum() for t in state.values())), 1.0, 10)  # noqa: E731
    return StrategyContext(BASE, cm, Streams(7), BLOCK_OF, 6, evaluate=score)


def _devices() -> list[Device]:
    fast, slow = (load_profile(FIXTURE_PROFILES / f"det_{k}.yaml") for k in ("fast", "slow"))
    return [Device(i, f"det_{'fast' if i % 2 else 'slow'}", fast if i % 2 else slow) for i in range(6)]


def _round(strategy, r: int, global_state: dict[str, torch.Tensor]) -> tuple[dict, dict[str, torch.Tensor]]:
    """Drive every hook of the round contract once, with made-up training results; return what came out."""
    streams = Streams(11)
    selected = strategy.select(r, _devices(), 4)
    assignment = strategy.configure(r, selected)
    plans = {d.id: plan_update(r, d.id, assignment.configs[d.id], np.arange(20), 6, streams) for d in selected}
    records, results = [], []
    for i, d in enumerate(selected):
        lost = i == 0 and r % 2 == 1  # now and then an update is lost
        start = strategy.start_state(d.id, global_state)
        trains = _trained_blocks(plans[d.id])
        trained = {n: t + 0.01 * (d.id + 1) * (r + 1) if BLOCK_OF[n] in trains else t for n, t in start.items()}
        records.append(_record(r, d, Outcome.DEADLINE if lost else Outcome.DELIVERED, i))
        if not lost:
            results.append(UpdateResult(plans[d.id], trained, 1.0, 0.5, 0.7, 2.0 - 0.1 * i, 1.5 - 0.05 * r))
    aggregate = strategy.aggregate(r, global_state, results)
    evaluation = strategy.ctx.evaluate(strategy.eval_state(aggregate.global_state))
    extras = strategy.observe(RoundFeedback(r, 0.0, 10.0, records, plans, results, evaluation))
    personal = strategy.device_state(selected[-1].id, aggregate.global_state)
    out = {
        "selected": [d.id for d in selected],
        "configs": assignment.configs,
        "assign_columns": assignment.round_columns,
        "columns": aggregate.round_columns,
        "update_columns": extras.update_columns,
        "tables": extras.tables,
        "personal": {n: t.tolist() for n, t in personal.items()},
    }
    return out, aggregate.global_state


def _trained_blocks(plan) -> set[int | None]:
    """The head and the blocks that ran in some step and whose LoRA was trainable."""
    depth = plan.config.trainable_depth
    lowest = 0 if depth is None else 6 - depth
    return {None} | {b for b in range(6) if plan.block_steps[b] > 0 and b >= lowest}


def _record(r: int, device: Device, outcome: Outcome, i: int) -> UpdateRecord:
    zeros = dict.fromkeys(
        ("download_s", "compute_s", "upload_s", "downlink_mbps", "uplink_mbps", "straggler_factor", "energy_j"), 0.0
    )
    return UpdateRecord(
        round_idx=r, device_id=device.id, profile=device.profile_id, tier=device.tier, outcome=outcome,
        failed_phase=None, start_s=0.0, end_s=2.0 + i, flops=0, peak_memory_bytes=0, usable_memory_bytes=0,
        active_blocks_mean=1.0, bytes_down=0, bytes_up=0, **zeros,
    )  # fmt: skip


def _leaves(state: dict) -> list:
    out = []
    for value in state.values():
        out.extend(_leaves(value) if isinstance(value, dict) else [value])
    return out


@pytest.mark.parametrize("name", sorted(ROWS))
def test_a_restored_strategy_continues_exactly_as_the_original(name):
    original = make_strategy(name, ROWS[name], _context())
    twin = make_strategy(name, ROWS[name], _context())
    try:
        g = {n: torch.zeros(2) for n in BLOCK_OF}
        for r in range(3):
            _, g = _round(original, r, g)
        state = original.state_dict()
        assert all(isinstance(v, int | float | np.ndarray | torch.Tensor) for v in _leaves(state)), _leaves(state)
        twin.load_state_dict(state)
        g_twin = {n: t.clone() for n, t in g.items()}
        for r in range(3, 7):
            out, g = _round(original, r, g)
            out_twin, g_twin = _round(twin, r, g_twin)
            assert out_twin == out, (name, r)
            assert all(torch.equal(g[n], g_twin[n]) for n in g), (name, r)
    finally:
        original.close()
        twin.close()


def test_fedadapter_trains_top_blocks_only_and_deepens_by_trials(write_scenario, run):
    _, frames = run(
        write_scenario({"strategy": {"name": "fedadapter", "options": {"trial_every": 2}}, "stop": {"max_rounds": 2}})
    )
    updates, rounds = frames["updates"], frames["rounds"]
    assert set(updates[updates["round"] == 1].trainable_depth) == {1}
    assert set(updates[updates["round"] == 2].trainable_depth) == {1, 2}, "a trial round: shallow and deep groups"
    shallow_acc, deep_acc = eval(rounds.trial.iloc[1])  # the two candidates' accuracies, depth 1 then 2
    assert rounds.trainable_depth.iloc[1] == (2 if deep_acc > shallow_acc else 1), "the better candidate wins"
    assert rounds.trial.iloc[0] == "" and rounds.trainable_depth.iloc[0] == 1
    trial = updates[updates["round"] == 2].groupby("trainable_depth").bytes_down.max()
    assert trial.loc[1] < trial.loc[2], "each group exchanges only what it trains"
    assert trial.loc[1] == updates[updates["round"] == 1].bytes_down.max()
    _, full = run(write_scenario({"stop": {"max_rounds": 1}}))
    shallow = updates[updates.trainable_depth == 1]
    assert (shallow.flops < full["updates"].flops.iloc[0]).all()
    assert (shallow.peak_memory_bytes < full["updates"].peak_memory_bytes.iloc[0]).all()
    assert (shallow.bytes_up < full["updates"].bytes_up.iloc[0]).all(), "only the top blocks' LoRA travels"
