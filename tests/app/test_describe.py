"""What the command line says about itself: --version, every command in --help, the strategies' options,
and a JSON Schema that accepts the shipped scenarios and rejects a broken one."""

from __future__ import annotations

import json
import re

import jsonschema
import pytest
import yaml
from conftest import ROOT

import fleetsim
from fleetsim.app.cli import main


def test_version_and_help_list_every_command(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.strip() == f"fleetsim {fleetsim.__version__}"
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    for command in (
        "run",
        "validate",
        "study",
        "compare",
        "report",
        "profiles",
        "strategies",
        "schema",
        "fetch",
        "calibrate",
    ):
        assert re.search(rf"^    {command}\b", text, re.MULTILINE), command


def test_strategies_lists_each_strategys_options_with_types_and_defaults(capsys):
    assert main(["strategies"]) == 0
    out = capsys.readouterr().out
    for expected in (
        "droppeft",
        "arms",
        "list[float]",
        "[0.5, 0.67]",
        "ptls.mode",
        "fedadapter",
        "deadline_aware",
        "max_update_s",
    ):
        assert expected in out, expected


def test_the_schema_validates_the_shipped_scenarios_and_rejects_a_broken_one(tmp_path, capsys):
    out = tmp_path / "scenario.schema.json"
    assert main(["schema", "--out", str(out)]) == 0
    schema = json.loads(out.read_text())
    for path in sorted((ROOT / "scenarios").glob("*.yaml")):
        jsonschema.validate(yaml.safe_load(path.read_text()), schema)
    broken = yaml.safe_load((ROOT / "scenarios" / "phones_mixed.yaml").read_text())
    broken["rounds"]["deadline_s"] = -5
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)
