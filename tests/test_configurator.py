"""Bandit policies against their formulas; DropPEFT assignment feasibility; PTLS; every strategy end to end."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from fleetsim.policy.bandits import POLICIES, make_policy
from fleetsim.policy.strategies import STRATEGIES

ALL = np.ones(3, dtype=bool)
# (arm, reward) pairs fed to every policy after it tried each arm once.
HISTORY = [(0, 1.0), (1, 2.0), (2, 0.5), (1, 1.5), (0, 0.2), (1, 2.5)]


def _fed(name: str, **params):
    policy = make_policy(name, 3, np.random.default_rng(0), params)
    for arm, reward in HISTORY:
        policy.update(arm, reward)
    return policy


def test_untried_arms_come_first_lowest_index_first():
    for name in POLICIES:
        policy = make_policy(name, 3, np.random.default_rng(0), {"epsilon": 0.0} if name == "epsilon_greedy" else {})
        assert policy.choose(ALL) == 0, name
        policy.update(0, 1.0)
        assert policy.choose(ALL) == 1, name
        assert policy.choose(np.array([True, False, True])) == 2, name


def test_ucb1_matches_its_formula():
    p = _fed("ucb1", c=0.5)
    pulls = np.array([2, 3, 1])
    means = np.array([(1.0 + 0.2) / 2, (2.0 + 1.5 + 2.5) / 3, 0.5]) / 2.5  # scaled by max |reward|
    expected = means + 0.5 * np.sqrt(2 * math.log(6) / pulls)
    assert np.allclose(p.scores(), expected)
    assert p.choose(ALL) == int(np.argmax(expected))
    assert p.choose(np.array([True, False, True])) == int(np.argmax(np.where([1, 0, 1], expected, -np.inf)))


def test_sliding_window_ucb_forgets_old_rewards():
    p = _fed("sw_ucb", c=0.5, window=3)  # only (1, 1.5), (0, 0.2), (1, 2.5) remain
    assert p.pulls.tolist() == [1, 2, 0]
    assert p.choose(ALL) == 2, "arm 2 fell out of the window: untried again"
    means = np.array([0.2, (1.5 + 2.5) / 2]) / 2.5
    expected = means + 0.5 * np.sqrt(2 * math.log(3) / np.array([1, 2]))
    assert np.allclose(p.scores()[:2], expected)


def test_discounted_ucb_matches_its_formula():
    g = 0.9
    p = _fed("discounted_ucb", c=0.5, gamma=g)
    weights = [g ** (len(HISTORY) - 1 - i) for i in range(len(HISTORY))]
    pulls = np.zeros(3)
    sums = np.zeros(3)
    for (arm, reward), w in zip(HISTORY, weights, strict=True):
        pulls[arm] += w
        sums[arm] += w * reward
    expected = sums / pulls / 2.5 + 0.5 * np.sqrt(2 * math.log(pulls.sum()) / pulls)
    assert np.allclose(p.scores(), expected)
    assert p.choose(ALL) == int(np.argmax(expected))


def test_epsilon_greedy_explores_with_its_rng_and_exploits_the_best_mean():
    p = _fed("epsilon_greedy", epsilon=0.3, decay=0.05)
    twin = np.random.default_rng(0)
    eps = 0.3 / (1 + 0.05 * 6)
    for _ in range(50):
        explore = twin.random() < eps
        expected = int(twin.choice([0, 1, 2])) if explore else 1  # arm 1 has the best mean
        assert p.choose(ALL) == expected


def test_thompson_draws_from_the_gaussian_posterior():
    p = _fed("thompson")
    twin = np.random.default_rng(0)
    rewards = np.array([r for _, r in HISTORY]) / 2.5
    sigma = max(float(np.sqrt(np.mean(rewards**2) - np.mean(rewards) ** 2)), 1e-3)
    means = np.array([(1.0 + 0.2) / 2, 2.0, 0.5]) / 2.5
    for _ in range(20):
        draws = twin.normal(means, sigma / np.sqrt(np.array([2, 3, 1]) + 1.0))
        assert p.choose(ALL) == int(np.argmax(draws))


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_every_strategy_runs_the_tiny_scenario(name, write_scenario, run):
    result, frames = run(write_scenario({"strategy": {"name": name}, "stop": {"max_rounds": 2}}))
    assert result.summary["strategy"] == name
    assert len(frames["rounds"]) == 2 and frames["rounds"].accuracy.notna().all()
    assert (frames["updates"].outcome == "delivered").all()
    assert result.summary["personalized_accuracy"] is not None


def _droppeft_tiny(write_scenario, extra: dict | None = None):
    return write_scenario(
        {
            "strategy": {"name": "droppeft", "options": {"arms": [0.0, 0.3, 0.5], "policy": "ucb1", **(extra or {})}},
            "stop": {"max_rounds": 3},
        }
    )


def test_same_seed_same_choices(write_scenario, run):
    path = _droppeft_tiny(write_scenario)
    _, a = run(path)
    _, b = run(path)
    pd.testing.assert_frame_equal(a["updates"], b["updates"])
    pd.testing.assert_frame_equal(a["bandit"], b["bandit"])
    assert a["updates"].arm.notna().all()


def test_no_infeasible_arm_is_ever_assigned(write_scenario, run, tmp_path):
    # det_fast has 8 GiB: every arm fits. A device sized between the peaks of ratio 0 and ratio 0.5 may
    # only ever get ratios that fit it.
    import yaml
    from conftest import FIXTURE_PROFILES

    _, probe = run(_droppeft_tiny(write_scenario))
    peaks = probe["updates"].groupby("dropout_ratio").peak_memory_bytes.max()
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    prof = yaml.safe_load((FIXTURE_PROFILES / "det_fast.yaml").read_text())
    prof["usable_memory_gib"] = float((peaks.loc[0.0] + peaks.loc[0.5]) / 2 / 1024**3)
    (profiles / "small.yaml").write_text(yaml.safe_dump(prof))
    for name in ("det_fast", "det_slow"):
        (profiles / f"{name}.yaml").write_text((FIXTURE_PROFILES / f"{name}.yaml").read_text())
    path = write_scenario(
        {
            "profiles_dir": str(profiles),
            "fleet": [{"profile": "small", "count": 2}, {"profile": "det_fast", "count": 2}],
            "strategy": {"name": "droppeft", "options": {"arms": [0.0, 0.5], "policy": "ucb1"}},
            "stop": {"max_rounds": 4},
        }
    )
    _, frames = run(path)
    updates = frames["updates"]
    small = updates[updates.profile == "small"]
    assert len(small) > 0 and (small.dropout_ratio == 0.5).all()
    assert (updates.outcome != "oom").all()
    assert (updates.peak_memory_bytes <= updates.usable_memory_bytes).all()


def test_policy_ratio_is_a_floor_and_slow_devices_drop_more(write_scenario, run):
    # det_slow computes 10x slower than det_fast: straggler balance gives it a ratio at least as high as the fast
    # devices' in every round, and with the floor no device drops less than the policy's arm.
    _, frames = run(_droppeft_tiny(write_scenario, {"ptls": None}))
    updates = frames["updates"].merge(frames["rounds"][["round", "global_arm_ratio"]], on="round")
    assert (updates.dropout_ratio >= updates.global_arm_ratio - 1e-12).all()
    by_round = updates.pivot_table(index="round", columns="profile", values="dropout_ratio", aggfunc="min")
    assert (by_round.det_slow >= by_round.det_fast).all()
    assert (by_round.det_slow > by_round.det_fast).any()


def test_ptls_uploads_only_shared_tensors_and_restores_personal_ones(write_scenario, run):
    from fleetsim.io.runs import load_run

    path = _droppeft_tiny(write_scenario, {"ptls": {"mode": "fixed", "shared_blocks": 3, "head_personal": True}})
    result, frames = run(path)
    # LoRA r=4 on q and v of 6 blocks; blocks 0-2 shared; head (8x384+8) personal.
    shared_bytes = 3 * 2 * (4 * 384 + 384 * 4) * 4
    delivered = frames["updates"][frames["updates"].outcome == "delivered"]
    assert (delivered.bytes_up == shared_bytes).all() and (delivered.bytes_down == shared_bytes).all()
    assert load_run(result.run_dir).rounds.personal_tensors.iloc[-1] == 3 * 2 * 2 + 2


def test_ptls_store_keeps_each_devices_personal_tensors():
    from fleetsim.policy.ptls import PersonalStore

    store = PersonalStore()
    try:
        store.put(3, {"a": torch.tensor([1.0, 2.0])})
        store.put(7, {"a": torch.tensor([5.0, 6.0])})
        assert torch.equal(store.get(3)["a"], torch.tensor([1.0, 2.0]))
        assert torch.equal(store.get(7)["a"], torch.tensor([5.0, 6.0]))
        assert store.get(4) is None and store.devices() == [3, 7]
    finally:
        store.close()
    assert not store.directory.exists()


def test_droppeft_start_state_uses_the_devices_own_personal_tensors(write_scenario):
    from fleetsim.core.updates import TrainConfig, UpdatePlan, UpdateResult
    from fleetsim.policy.strategies.base import StrategyContext
    from fleetsim.policy.strategies.droppeft import DropPEFT, DropPEFTOptions

    block_of = {"b0": 0, "b1": 1, "head": None}

    class FakeCost:
        model_blocks = 2

    ctx = StrategyContext(TrainConfig(1, 1, 8, 0.1), None, FakeCost(), None, block_of, 2)  # type: ignore[arg-type]
    options = DropPEFTOptions(configurator=False, ptls={"mode": "fixed", "shared_blocks": 1, "head_personal": True})
    strategy = DropPEFT(ctx, options)
    try:
        assert strategy.shared_names() == frozenset({"b0"})
        g = {"b0": torch.zeros(1), "b1": torch.zeros(1), "head": torch.zeros(1)}

        def result(device: int, value: float) -> UpdateResult:
            plan = UpdatePlan(0, device, TrainConfig(1, 1, 8, 0.1), 0, np.arange(10), np.ones((1, 2), dtype=bool))
            return UpdateResult(plan, {k: torch.tensor([value]) for k in g}, 0, 0, 0)

        merged = strategy.aggregate(0, g, [result(1, 1.0), result(2, 3.0)])
        assert merged["b0"].item() == 2.0, "shared block averaged"
        assert merged["b1"].item() == 0.0 and merged["head"].item() == 0.0, "personal tensors not aggregated"
        own = strategy.start_state(1, 2, merged)
        assert own["b1"].item() == 3.0 and own["head"].item() == 3.0 and own["b0"].item() == 2.0
        newcomer = strategy.start_state(1, 9, merged)
        assert newcomer["b1"].item() == 2.0, "a new device starts from the population mean"
        assert strategy.eval_state(merged)["head"].item() == 2.0
    finally:
        strategy.close()


def test_fedadapter_trains_top_blocks_only_and_deepens_by_trials(write_scenario, run):
    _, frames = run(
        write_scenario({"strategy": {"name": "fedadapter", "options": {"trial_every": 2}}, "stop": {"max_rounds": 2}})
    )
    updates, rounds = frames["updates"], frames["rounds"]
    assert set(updates[updates["round"] == 0].trainable_depth) == {1}
    assert set(updates[updates["round"] == 1].trainable_depth) == {1, 2}, "a trial round: shallow and deep groups"
    assert rounds.trial.iloc[1] != "" and rounds.trainable_depth.iloc[1] in (1, 2)
    _, full = run(write_scenario({"stop": {"max_rounds": 1}}))
    shallow = updates[updates.trainable_depth == 1]
    assert (shallow.flops < full["updates"].flops.iloc[0]).all()
    assert (shallow.peak_memory_bytes < full["updates"].peak_memory_bytes.iloc[0]).all()
    assert (shallow.bytes_up < full["updates"].bytes_up.iloc[0]).all(), "only the top blocks' LoRA travels"


def test_block_disagreement_ranks_the_block_clients_pull_apart():
    from fleetsim.core.updates import TrainConfig, UpdatePlan, UpdateResult
    from fleetsim.policy.ptls import block_disagreement

    block_of = {"b0": 0, "b1": 1, "head": None}
    g = {"b0": torch.zeros(2), "b1": torch.zeros(2), "head": torch.zeros(1)}

    def result(b0: list[float], b1: list[float]) -> UpdateResult:
        plan = UpdatePlan(0, 0, TrainConfig(1, 1, 8, 0.1), 0, np.arange(4), np.ones((1, 2), dtype=bool))
        return UpdateResult(plan, {"b0": torch.tensor(b0), "b1": torch.tensor(b1), "head": torch.zeros(1)}, 0, 0, 0)

    # Block 0: both clients move the same way (similarity 1). Block 1: opposite-ish directions.
    out = block_disagreement(g, [result([1, 0], [1, 0]), result([2, 0], [0, 1])], block_of, 2)
    # mean of block 1 = (0.5, 0.5): each update has cosine 1/sqrt(2) to it.
    assert out[0] == pytest.approx(0.0, abs=1e-6)
    assert out[1] == pytest.approx(1 - 1 / math.sqrt(2), abs=1e-6)


def test_lr_scale_applies_only_while_blocks_are_dropped():
    from fleetsim.core.dropout import DropoutConfig
    from fleetsim.core.updates import TrainConfig
    from fleetsim.policy.configurators.base import with_dropout

    base = TrainConfig(4, 8, 32, 0.01)
    assert with_dropout(base, DropoutConfig(0.5, "keep_ends"), 2.0).lr == pytest.approx(0.02)
    assert with_dropout(base, DropoutConfig(0.0, "keep_ends"), 2.0).lr == pytest.approx(0.01)
