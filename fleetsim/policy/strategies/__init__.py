"""Federated strategies, registered by name: ``strategy: {name: fedlora, options: {...}}``.

Adding a strategy is one file with a ``@register_strategy`` class and one row in the parametrized test.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from fleetsim.core.errors import InputError
from fleetsim.policy.strategies import droppeft as _droppeft  # noqa: F401  (registers)
from fleetsim.policy.strategies import fedadapter as _fedadapter  # noqa: F401
from fleetsim.policy.strategies import fedlora as _fedlora  # noqa: F401
from fleetsim.policy.strategies import layerdrop as _layerdrop  # noqa: F401
from fleetsim.policy.strategies import pld as _pld  # noqa: F401
from fleetsim.policy.strategies.base import STRATEGIES, Strategy, StrategyContext, register_strategy
from fleetsim.spec.schema import validate

if TYPE_CHECKING:
    from fleetsim.spec.scenario import StrategySpec

__all__ = [
    "STRATEGIES",
    "Strategy",
    "StrategyContext",
    "make_strategy",
    "register_strategy",
    "validate_strategy",
]


def validate_strategy(spec: StrategySpec, file: str | Path) -> None:
    """Check the strategy name and its options; raise :class:`InputError` naming ``strategy.*``."""
    name, options = spec.name, spec.options
    if name not in STRATEGIES:
        raise InputError(file, "strategy.name", f"one of {', '.join(sorted(STRATEGIES))}", name)
    validate(STRATEGIES[name].Options, options, file, prefix=("strategy", "options"))


def make_strategy(name: str, options: dict[str, object], ctx: StrategyContext) -> Strategy:
    cls = STRATEGIES[name]
    return cls(ctx, cls.Options.model_validate(options))
