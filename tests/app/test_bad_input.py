"""Bad input: one line naming file, field path, expectation and value; exit code 2; nothing written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import DETERMINISTIC, FIXTURE_PROFILES, deep_update

from fleetsim.app.cli import main

MBPS = {"dist": "constant", "value": 10}
CASES = {
    "unknown key": ({"training": {"local_stepz": 3}}, "training.local_stepz: expected one of the known keys"),
    "wrong type": (
        {"training": {"batch_size": "sixteen"}},
        "training.batch_size: expected a valid integer, got 'sixteen'",
    ),
    "negative duration": (
        {"rounds": {"deadline_s": -5}},
        "rounds.deadline_s: expected greater than 0, got -5",
    ),
    "unknown profile": (
        {"fleet": [{"profile": "phone_xl", "count": 2}]},
        "fleet[0].profile: expected a profile in",
    ),
    "unknown model": ({"model": {"id": "gpt-17"}}, "model.id: expected a model id (minilm-l6, smollm2-135m)"),
    "unknown dataset": ({"dataset": {"id": "imagenet"}}, "dataset.id: expected a dataset id (reuters-r8"),
    "zero count": (
        {"fleet": [{"profile": "det_fast", "count": 0}]},
        "fleet[0].count: expected greater than 0, got 0",
    ),
    "unknown strategy": ({"strategy": {"name": "fedmagic"}}, "strategy.name: expected one of"),
    "nothing stops": ({"stop": {"max_rounds": None}}, "stop: expected max_rounds or max_sim_time_s"),
    "too many clients": (
        {"rounds": {"clients_per_round": 9}},
        "rounds.clients_per_round: expected at most the fleet size (4), got 9",
    ),
    "unknown optimizer": (
        {"training": {"optimizer": {"name": "adam"}}},
        "training.optimizer.name: expected one of adamw, sgd, got 'adam'",
    ),
    "unknown executor": (
        {"executor": {"kind": "slurm"}},
        "executor.kind: expected one of inline, process, ray, got 'slurm'",
    ),
    "unknown proxy": (
        {"cost_model": {"arch": "gpt-5"}},
        "cost_model.arch: expected one of gemma-3-270m, llama-2-13b, llama-2-7b, roberta-base, roberta-large, "
        "smollm2-135m, got",
    ),
    "unknown strategy option": (
        {"strategy": {"name": "layerdrop", "options": {"ratoi": 0.5}}},
        "strategy.options.ratoi: expected one of the known keys (ratio, schedule, ends, cap, lr_scale, anneal_rounds)",
    ),
    "unknown schedule": (
        {"strategy": {"name": "layerdrop", "options": {"schedule": "sideways"}}},
        "strategy.options.schedule: expected one of depth, exact_k, keep_ends, pld, uniform, got 'sideways'",
    ),
    "unknown policy": (
        {"strategy": {"name": "droppeft", "options": {"policy": "ucb2"}}},
        "strategy.options.policy: expected one of discounted_ucb, epsilon_greedy, sw_ucb, thompson, ucb1, got 'ucb2'",
    ),
    "unknown policy parameter": (
        {"strategy": {"name": "droppeft", "options": {"policy": "sw_ucb", "policy_params": {"windw": 5}}}},
        "strategy.options.policy_params: expected parameters of sw_ucb (c, window), got {'windw': 5}",
    ),
    "bad policy parameter": (
        {"strategy": {"name": "droppeft", "options": {"policy_params": {"window": 0}}}},
        "strategy.options.policy_params.window: expected greater than or equal to 1, got 0",
    ),
    "unknown reward": (
        {"strategy": {"name": "droppeft", "options": {"reward": "speed"}}},
        "strategy.options.reward: expected one of accuracy_gain_per_s, global_loss_drop_per_s, loss_drop_per_round_s",
    ),
    "pld ratio out of reach": (
        {"strategy": {"name": "pld", "options": {"ratio": 0.6}}},
        "strategy.options.ratio: expected at most 0.583 for pld on 6 blocks ((L+1)/2L), got 0.6",
    ),
    "depth ratio above its cap": (
        {"strategy": {"name": "layerdrop", "options": {"schedule": "depth", "ratio": 0.5, "cap": 0.4}}},
        "strategy.options.ratio: expected a ratio below the depth schedule's cap (0.4), got 0.5",
    ),
    "too few examples per device": (
        {"fleet": [{"profile": "det_fast", "count": 1000}], "rounds": {"clients_per_round": 4}},
        "dataset.partition.min_samples_per_device: expected at most 5 (1000 devices share 5485 training examples, "
        "5.5 each), got 8",
    ),
    "alpha too small for the fleet": (
        {"fleet": [{"profile": "det_fast", "count": 300}], "dataset": {"partition": {"alpha": 0.01}}},
        "dataset.partition.alpha: expected a larger alpha",
    ),
    "no device fits any arm": (
        {"fleet": [{"profile": "det_tiny_memory", "count": 4}], "strategy": {"name": "droppeft"}},
        "fleet: expected at least one device on which some configuration of droppeft fits in memory, got 'none of 4",
    ),
    "sequence longer than the model takes": (
        {"training": {"seq_len": 100000}},
        "training.seq_len: expected at most 512 (the model's longest input), got 100000",
    ),
    "more local test examples than the test split": (
        {"dataset": {"local_test_examples": 10**9}},
        "dataset.local_test_examples: expected at most 2189 (the test split of reuters-r8), got 1000000000",
    ),
    "infinite learning rate": ({"training": {"optimizer": {"lr": float("inf")}}}, "training.optimizer.lr: expected"),
    "empty LoRA targets": (
        {"model": {"lora": {"target_modules": []}}},
        "model.lora.target_modules: expected at least 1 item(s), got []",
    ),
    "NUL byte in the output folder": (
        {"output_dir": "runs\x00x"},
        "output_dir: expected a folder this user can write run directories into",
    ),
    "unknown selector": (
        {"selection": {"name": "fastest"}},
        "selection.name: expected one of deadline_aware, oort, uniform or a plug-in (module:Class, or an entry "
        "point), got 'fastest'",
    ),
    "bad selector option": (
        {"selection": {"name": "deadline_aware", "options": {"max_update_s": -1}}},
        "selection.options.max_update_s: expected greater than 0, got -1",
    ),
    "profile and population": (
        {"fleet": [{"profile": "det_fast", "population": "ai_benchmark_2019", "reference": "det_fast", "count": 4}]},
        "fleet[0]: expected either profile or population (with reference)",
    ),
    "population without reference": (
        {"fleet": [{"population": "ai_benchmark_2019", "count": 4}]},
        "fleet[0]: expected population needs reference: the profile of its median phone",
    ),
    "unknown availability kind": (
        {"fleet": [{"profile": "det_fast", "count": 4, "availability": {"kind": "lunar"}}]},
        "fleet[0].availability: expected a variant among 'exponential', 'diurnal', 'trace', got 'lunar'",
    ),
    "missing trace file": (
        {"fleet": [{"profile": "det_fast", "count": 4, "availability": {"kind": "trace", "file": "nope.csv"}}]},
        "fleet[0].availability.file: expected an existing CSV or Parquet trace",
    ),
    "outage of an unknown tier": (
        {"outages": [{"windows_s": [[0, 10]], "tiers": ["phone-xl"]}]},
        "outages[0].tiers[0]: expected one of the fleet's tiers (test-fast, test-slow), got 'phone-xl'",
    ),
    "outage neither scheduled nor random": (
        {"outages": [{"mean_interval_s": 60}]},
        "outages[0]: expected either windows_s, or mean_interval_s with mean_duration_s",
    ),
    "battery draining below nothing": (
        {
            "fleet": [
                {"profile": "det_fast", "count": 4, "battery": {"capacity_wh": 10, "idle_drain_w": -1, "charge_w": 5}}
            ]
        },
        "fleet[0].battery.idle_drain_w: expected greater than or equal to 0, got -1",
    ),
    "arm out of range": (
        {"strategy": {"name": "droppeft", "options": {"arms": [0.5, 1.2]}}},
        "strategy.options.arms: expected ratios in [0, 1), got [0.5, 1.2]",
    ),
    "waiting for more devices than the fleet has": (
        {"rounds": {"min_available": 9}},
        "rounds.min_available: expected at most the fleet size (4), got 9",
    ),
    "a keep_ends ratio it cannot reach": (
        {"strategy": {"name": "layerdrop", "options": {"ratio": 0.9, "schedule": "keep_ends"}}},
        "strategy.options.ratio: expected at most 0.67 for keep_ends on 6 blocks (4 can drop, 1 kept at each end), "
        "got 0.9",
    ),
    "a group's link shares": (
        {
            "fleet": [
                {
                    "profile": "det_fast",
                    "count": 4,
                    "links": {"wifi": {"share": 0.5, "downlink_mbps": MBPS, "uplink_mbps": MBPS}},
                }
            ]
        },
        "fleet[0].links: expected shares that add up to 1 (these add up to 0.5), got",
    ),
    "fractional seed": ({"seed": 1.5}, "seed: expected a whole number, got 1.5"),
    "empty fleet": ({"fleet": []}, "fleet: expected at least 1 item(s), got []"),
}


def _write(tmp_path: Path, changes: dict) -> Path:
    data = deep_update(DETERMINISTIC, changes)
    data.setdefault("output_dir", str(tmp_path / "runs"))
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_scenario_gives_one_line_and_exit_code_2(tmp_path, capsys, case):
    changes, expected = CASES[case]
    path = _write(tmp_path, changes)
    assert main(["run", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err
    assert err.startswith(f"fleetsim: error: {path}: "), err
    assert expected in err, err
    assert not (tmp_path / "runs").exists(), "no run directory may be left behind"


def test_every_mistake_in_a_scenario_gets_its_own_line(tmp_path, capsys):
    changes = {"training": {"batch_size": "sixteen", "local_stepz": 3}, "rounds": {"deadline_s": -5}}
    path = _write(tmp_path, changes)
    assert main(["validate", str(path)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 3, lines
    assert all(line.startswith(f"fleetsim: error: {path}: ") for line in lines)
    assert [line.split(": ")[3] for line in lines] == [
        "training.batch_size",
        "training.local_stepz",
        "rounds.deadline_s",
    ]


def test_missing_file(tmp_path, capsys):
    assert main(["run", str(tmp_path / "nope.yaml")]) == 2
    assert (
        capsys.readouterr().err.strip()
        == f"fleetsim: error: {tmp_path / 'nope.yaml'}: file not found (expected an existing YAML file)"
    )


def test_invalid_yaml_names_the_line(tmp_path, capsys):
    path = tmp_path / "broken.yaml"
    path.write_text("name: x\nfleet: [\n  - {profile: a\n")
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"fleetsim: error: {path}: line ") and "valid YAML" in err


def test_malformed_profile_names_the_profile_file(tmp_path, capsys):
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    bad = yaml.safe_load((FIXTURE_PROFILES / "det_fast.yaml").read_text())
    bad["uplink_mbps"] = {"dist": "lognormal", "median": -3, "sigma": 0.1}
    (profiles / "det_fast.yaml").write_text(yaml.safe_dump(bad))
    path = _write(tmp_path, {"profiles_dir": str(profiles), "fleet": [{"profile": "det_fast", "count": 4}]})
    assert main(["run", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    where = f"{profiles / 'det_fast.yaml'}: uplink_mbps.lognormal.median"
    assert err == f"fleetsim: error: {where}: expected greater than 0, got -3"


def test_profile_without_sources_is_rejected(tmp_path, capsys):
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    bad = yaml.safe_load((FIXTURE_PROFILES / "det_fast.yaml").read_text())
    del bad["sources"]["train_flops_per_s"]
    (profiles / "det_fast.yaml").write_text(yaml.safe_dump(bad))
    path = _write(tmp_path, {"profiles_dir": str(profiles), "fleet": [{"profile": "det_fast", "count": 4}]})
    assert main(["validate", str(path)]) == 2
    assert "a source for every figure; missing for ['train_flops_per_s']" in capsys.readouterr().err


def test_bad_override_is_reported_against_set(tmp_path, capsys):
    path = _write(tmp_path, {})
    assert main(["run", str(path), "--set", "fleet[5].count=3"]) == 2
    assert (
        capsys.readouterr().err.strip()
        == "fleetsim: error: --set: fleet[5].count: expected an existing list index (< 2), got 5"
    )


def test_missing_asset_says_which_command_fetches_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("FLEETSIM_CACHE", str(tmp_path / "empty-cache"))
    path = _write(tmp_path, {})
    assert main(["run", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "model.id: model 'minilm-l6' is not fetched yet: run `fleetsim fetch minilm-l6`" in err


def test_cli_process_prints_no_traceback(tmp_path):
    path = _write(tmp_path, {"rounds": {"deadline_s": "soon"}})
    env = dict(os.environ)
    done = subprocess.run([sys.executable, "-m", "fleetsim", "run", str(path)], capture_output=True, text=True, env=env)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [
        f"fleetsim: error: {path}: rounds.deadline_s: expected a valid number, got 'soon'"
    ]
    assert not (tmp_path / "runs").exists()


def test_validate_checks_study_files_and_every_variant(tmp_path, capsys):
    scenario = _write(tmp_path, {})
    study = tmp_path / "study.yaml"
    study.write_text(
        yaml.safe_dump(
            {"name": "s", "scenario": scenario.name, "variants": [{"label": "a"}, {"label": "b", "set": ["seed=7"]}]}
        )
    )
    assert main(["validate", str(study)]) == 0
    assert "ok — study s, 2 variants" in capsys.readouterr().out
    bad = tmp_path / "bad_study.yaml"
    bad.write_text(
        yaml.safe_dump(
            {"name": "s", "scenario": scenario.name, "variants": [{"label": "a", "set": ["strategy.name=nope"]}]}
        )
    )
    assert main(["validate", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"fleetsim: error: {bad}: variants[0] (a): {scenario}: strategy.name: expected "), err
    assert "\n" not in err


def test_an_output_folder_that_cannot_be_created_is_named(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    path = _write(tmp_path, {"output_dir": str(blocker / "runs")})
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    expected = "expected a folder this user can write run directories into"
    assert err == f"fleetsim: error: {path}: output_dir: {expected}, got {str(blocker / 'runs')!r}"


def test_a_scenario_that_is_not_utf8_names_the_byte(tmp_path, capsys):
    path = tmp_path / "latin1.yaml"
    path.write_bytes(yaml.safe_dump(DETERMINISTIC).encode() + "description: caf\xe9\n".encode("latin-1"))
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"fleetsim: error: {path}: byte ") and err.endswith("expected UTF-8 text, got b'\\xe9'"), err


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ("a,zero,50", "row 2.online_start_s: expected a finite number of seconds >= 0, got 'zero'"),
        ("a,-100,50", "row 2.online_start_s: expected a finite number of seconds >= 0, got '-100'"),
        ("a,100,", "row 2.online_end_s: expected a finite number of seconds >= 0, got 'nan'"),
    ],
)
def test_a_trace_time_that_is_not_a_time_is_named_by_row_and_column(tmp_path, capsys, row, expected):
    trace = tmp_path / "trace.csv"
    trace.write_text(f"device,online_start_s,online_end_s\n{row}\n")
    availability = {"kind": "trace", "file": str(trace)}
    path = _write(tmp_path, {"fleet": [{"profile": "det_fast", "count": 4, "availability": availability}]})
    assert main(["validate", str(path)]) == 2
    assert capsys.readouterr().err.strip() == f"fleetsim: error: {trace}: {expected}"


def test_a_run_dir_that_cannot_be_created_is_named(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    path = _write(tmp_path, {})
    assert main(["run", str(path), "--run-dir", str(blocker / "run"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    expected = "expected a folder that can be created (Not a directory)"
    assert err == f"fleetsim: error: --run-dir: {expected}, got {str(blocker / 'run')!r}"


def test_lora_targets_the_model_lacks_are_named_and_nothing_is_left(tmp_path, capsys):
    path = _write(tmp_path, {"model": {"lora": {"r": 4, "alpha": 8, "target_modules": ["q_proj"]}}})
    assert main(["run", str(path), "--run-dir", str(tmp_path / "runs" / "r"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"fleetsim: error: {path}: model.lora.target_modules: expected module names of this model")
    assert err.endswith("got ['q_proj']"), err
    assert not (tmp_path / "runs").exists(), "no run directory may be left behind"
