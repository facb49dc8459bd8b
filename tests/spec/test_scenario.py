"""``--set key=value`` overrides of a raw scenario tree."""

from __future__ import annotations

import pytest

from fleetsim.core.errors import InputError
from fleetsim.spec.scenario import apply_overrides


def test_overrides_set_nested_and_indexed_fields():
    raw = {"fleet": [{"profile": "a", "count": 1}], "training": {"local_steps": 2}}
    out = apply_overrides(raw, ["fleet[0].count=7", "training.local_steps=5", "stop.max_rounds=3", "fleet.0.profile=b"])
    assert out["fleet"][0] == {"profile": "b", "count": 7}
    assert out["training"]["local_steps"] == 5 and out["stop"]["max_rounds"] == 3
    assert raw["fleet"][0]["count"] == 1, "the input is not modified"
    with pytest.raises(InputError, match="key=value"):
        apply_overrides(raw, ["training.local_steps"])
