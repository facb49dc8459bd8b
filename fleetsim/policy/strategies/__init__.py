"""Federated strategies, registered by name: ``strategy: {name: fedlora, options: {...}}``.

Every module in this folder is imported with the package, so adding a strategy is one file with a
``@STRATEGIES.register`` class (and one row in the strategies' parametrized test).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Mapping
from typing import Any

from fleetsim.policy.strategies.base import STRATEGIES, NoOptions, Strategy, StrategyContext

__all__ = ["STRATEGIES", "NoOptions", "Strategy", "StrategyContext", "make_strategy"]

for _module in pkgutil.iter_modules(__path__):
    if _module.name != "base":
        importlib.import_module(f"{__name__}.{_module.name}")


def make_strategy(name: str, options: Mapping[str, Any], ctx: StrategyContext) -> Strategy:
    """Build the registered strategy ``name`` with its options validated."""
    cls = STRATEGIES[name]
    return cls(ctx, cls.Options.model_validate(dict(options)))
