"""Fuzzing the input boundary: generated scenarios and device profiles — wrong types, out-of-range numbers,
unknown keys, missing fields, odd YAML, huge fleets, empty lists — either pass validation or fail with exit
code 2 and one line naming the file and the field, never a traceback, never a run directory."""

from __future__ import annotations

import copy
import re
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import DETERMINISTIC, FIXTURE_PROFILES
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fleetsim.app import runner
from fleetsim.app.cli import main

FIELDS = [
    "name", "seed", "description", "output_dir", "profiles_dir", "fleet", "fleet[0]", "fleet[0].profile",
    "fleet[0].count", "model", "model.id", "model.lora", "model.lora.r", "model.lora.alpha", "model.lora.dropout",
    "model.lora.target_modules", "dataset", "dataset.id", "dataset.partition", "dataset.partition.kind",
    "dataset.partition.alpha", "dataset.partition.min_samples_per_device", "dataset.local_test_examples",
    "training", "training.local_steps", "training.batch_size", "training.seq_len", "training.optimizer",
    "training.optimizer.name", "training.optimizer.lr", "training.optimizer.weight_decay", "rounds",
    "rounds.clients_per_round", "rounds.deadline_s", "rounds.min_available", "rounds.retry_s", "stop",
    "stop.max_rounds", "stop.target_accuracy", "stop.max_sim_time_s", "stop.continue_after_target", "evaluation",
    "evaluation.every_rounds", "evaluation.max_examples", "evaluation.batch_size", "evaluation.personalized_devices",
    "strategy", "strategy.name", "strategy.options", "cost_model", "cost_model.arch", "cost_model.weight_dtype",
    "executor", "executor.kind",
]  # fmt: skip
PROFILE_FIELDS = [
    "name", "tier", "usable_memory_gib", "train_flops_per_s", "downlink_mbps", "downlink_mbps.dist",
    "downlink_mbps.value", "uplink_mbps", "link_latency_s", "availability", "availability.mean_online_s",
    "failure_prob_per_update", "straggler_sigma", "train_power_w", "radio_power_w", "sources",
    "sources.train_flops_per_s",
]  # fmt: skip
STRATEGY_OPTIONS = {
    "droppeft": ["arms", "schedule", "ends", "policy", "policy_params", "reward", "lr_scale", "ptls", "fixed_ratio"],
    "layerdrop": ["ratio", "schedule", "ends", "cap", "lr_scale", "anneal_rounds"],
    "pld": ["ratio", "gamma"],
    "fedadapter": ["start_depth", "max_depth", "trial_every"],
}

VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["", "0", "-1", "1e309", "fedlora", "droppeft", "sw_ucb", "keep_ends", "pld", "\x00", "../x"]),
    st.lists(st.one_of(st.integers(-3, 3), st.floats(-2, 2), st.text(max_size=3)), max_size=3),
    st.dictionaries(st.text(max_size=6), st.integers(-5, 5), max_size=2),
)


def _parts(path: str) -> list[str | int]:
    out: list[str | int] = []
    for piece in path.split("."):
        name, *indices = re.split(r"\[(\d+)\]", piece)
        out.append(name)
        out.extend(int(i) for i in indices if i)
    return out


def _set(tree: Any, path: str, value: Any, delete: bool = False) -> None:
    *parents, last = _parts(path)
    node = tree
    for part in parents:
        if isinstance(node, dict):
            node = node.setdefault(part, {})
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        else:
            return
    if isinstance(node, dict):
        if delete:
            node.pop(last, None)
        else:
            node[last] = value
    elif isinstance(node, list) and isinstance(last, int) and last < len(node):
        node[last] = value


@st.composite
def scenario_text(draw: st.DrawFn) -> str:
    """A scenario file: the deterministic test scenario with 1-3 mutations, or odd YAML."""
    if draw(st.integers(0, 19)) == 0:
        return draw(
            st.one_of(st.text(max_size=60), st.sampled_from(["", "[", "a: [b", "- 1\n- 2", "x: !!python/none"]))
        )
    tree = copy.deepcopy(DETERMINISTIC)
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["set", "set", "delete", "unknown", "huge_fleet", "empty", "options"]))
        if kind == "set":
            _set(tree, draw(st.sampled_from(FIELDS)), draw(VALUES))
        elif kind == "delete":
            _set(tree, draw(st.sampled_from(FIELDS)), None, delete=True)
        elif kind == "unknown":
            parent = draw(st.sampled_from(["", "model", "rounds", "training", "stop", "strategy.options"]))
            _set(tree, f"{parent}.{draw(st.text(min_size=1, max_size=8))}".lstrip("."), draw(VALUES))
        elif kind == "huge_fleet":
            _set(tree, "fleet[0].count", draw(st.integers(10**3, 10**9)))
        elif kind == "empty":
            _set(tree, draw(st.sampled_from(["fleet", "model.lora.target_modules", "strategy.options"])), [])
        else:
            name = draw(st.sampled_from(sorted(STRATEGY_OPTIONS)))
            option = draw(st.sampled_from(STRATEGY_OPTIONS[name]))
            tree["strategy"] = {"name": name, "options": {option: draw(VALUES)}}
    return yaml.safe_dump(tree, sort_keys=False, allow_unicode=True)


@st.composite
def profile_text(draw: st.DrawFn) -> str:
    tree = yaml.safe_load((FIXTURE_PROFILES / "det_fast.yaml").read_text())
    if draw(st.booleans()):
        _set(tree, draw(st.sampled_from(PROFILE_FIELDS)), draw(VALUES))
    else:
        _set(tree, draw(st.sampled_from(PROFILE_FIELDS)), None, delete=True)
    return yaml.safe_dump(tree, sort_keys=False, allow_unicode=True)


RUNS = "RUNS-FOLDER"
OUTCOMES = {"valid": 0, "error": 0}


class _WouldRun(Exception):
    pass


def _would_run(*args: Any, **kwargs: Any) -> Any:
    raise _WouldRun


def _check(scenario: str, profile: str | None, capsys: pytest.CaptureFixture[str]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        profiles = root / "profiles"
        profiles.mkdir()
        for source in FIXTURE_PROFILES.glob("*.yaml"):
            (profiles / source.name).write_text(source.read_text())
        if profile is not None:
            (profiles / "det_fast.yaml").write_text(profile)
        path = root / "scenario.yaml"
        text = scenario.replace(str(FIXTURE_PROFILES), str(profiles)).replace(RUNS, str(root / "runs"))
        path.write_text(text, encoding="utf-8")
        capsys.readouterr()
        try:
            code = main(["run", str(path)])
        except _WouldRun:
            OUTCOMES["valid"] += 1
            return  # valid input: the run would start here
        err = capsys.readouterr().err
        assert code == 2, err
        assert err.endswith("\n") and "Traceback" not in err, err
        for line in err.rstrip("\n").split("\n"):  # one line per mistake
            assert re.match(r"fleetsim: error: [^:]+(: profile \w+)?: ", line), err
        assert not (root / "runs").exists(), "no run directory for bad input"
        OUTCOMES["error"] += 1


@settings(max_examples=400, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(scenario=scenario_text())
def test_generated_scenarios_fail_cleanly_or_pass(scenario, capsys, monkeypatch):
    monkeypatch.setattr(runner, "run_scenario", _would_run)
    _check(scenario, None, capsys)


@settings(max_examples=120, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(profile=profile_text())
def test_generated_profiles_fail_cleanly_or_pass(profile, capsys, monkeypatch):
    monkeypatch.setattr(runner, "run_scenario", _would_run)
    _check(yaml.safe_dump({**DETERMINISTIC, "output_dir": RUNS}, sort_keys=False), profile, capsys)


def test_the_fuzzing_mostly_produced_errors():
    """Runs after the generators (file order): most generated inputs must be bad, or the fuzzing is idle."""
    assert OUTCOMES["error"] >= 400 and OUTCOMES["error"] > 3 * OUTCOMES["valid"], OUTCOMES
