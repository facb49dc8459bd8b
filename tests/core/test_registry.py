"""A registry takes each name once and rejects unknown names with the alternatives."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from fleetsim.core.registry import Registry


@dataclass(frozen=True)
class Thing:
    name: str


def test_registry_looks_up_by_name_and_lists_alternatives():
    things: Registry[Thing] = Registry("thing")
    a = things.register(Thing("a"))
    things.register(Thing("b"))
    assert things["a"] is a and list(things) == ["a", "b"] and len(things) == 2
    assert things.check("b") == "b"
    with pytest.raises(ValueError, match="one of a, b"):
        things.check("c")
    with pytest.raises(KeyError, match="unknown thing 'c'; known: a, b"):
        things["c"]
    with pytest.raises(ValueError, match="registered twice"):
        things.register(Thing("a"))
