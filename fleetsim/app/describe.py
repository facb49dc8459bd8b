"""What a user can write in a scenario, from the schemas themselves: each strategy's options (name, type,
default, description) and a JSON Schema of the scenario file for editors and CI checks.
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from fleetsim.policy.selection import SELECTORS
from fleetsim.policy.strategies import STRATEGIES
from fleetsim.spec.profiles import load_profile
from fleetsim.spec.scenario import Scenario

__all__ = ["OptionRow", "option_rows", "profile_rows", "scenario_schema", "selector_rows", "strategy_rows"]


@dataclass(frozen=True)
class OptionRow:
    """One option of a registered choice, as a scenario writes it (nested options dotted)."""

    owner: str  # strategy or selector name
    summary: str  # first line of the owner's docstring
    option: str
    type: str
    default: str
    description: str


def _type_name(annotation: Any) -> str:
    """``float | None``, ``list[float]``, ``Literal['fixed', 'disagreement']``: as a scenario author reads it."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return _type_name(args[0])
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type_name(a) for a in args)
    if origin is typing.Literal:
        return " | ".join(repr(a) for a in args)
    if origin is not None:
        return f"{getattr(origin, '__name__', str(origin))}[{', '.join(_type_name(a) for a in args)}]"
    if annotation is type(None):
        return "None"
    return getattr(annotation, "__name__", str(annotation).replace("typing.", ""))


def _default(field: Any) -> str:
    if field.default is not PydanticUndefined:
        return repr(field.default)
    if field.default_factory is not None:
        value = field.default_factory()
        return repr(value.model_dump() if isinstance(value, BaseModel) else value)
    return "required"


def option_rows(owner: str, model: type[BaseModel], summary: str, prefix: str = "") -> list[OptionRow]:
    """Every option of ``model`` (nested models' options as ``parent.child``)."""
    rows = []
    for name, field in model.model_fields.items():
        nested = [a for a in (field.annotation, *typing.get_args(field.annotation)) if _is_model(a)]
        if nested:
            rows.extend(option_rows(owner, nested[0], summary, f"{prefix}{name}."))
            continue
        rows.append(
            OptionRow(
                owner, summary, prefix + name, _type_name(field.annotation), _default(field), field.description or ""
            )
        )
    return rows


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _summary(cls: type) -> str:
    return (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""


def strategy_rows() -> list[OptionRow]:
    """Every registered strategy's options, in registration order (a strategy without options: one row)."""
    rows = []
    for name, cls in STRATEGIES.items():
        options = option_rows(name, cls.Options, _summary(cls))
        rows.extend(options or [OptionRow(name, _summary(cls), "", "", "", "no options")])
    return rows


def selector_rows() -> list[OptionRow]:
    """Every registered selector's options."""
    rows = []
    for name, cls in SELECTORS.items():
        options = option_rows(name, cls.Options, _summary(cls))
        rows.extend(options or [OptionRow(name, _summary(cls), "", "", "", "no options")])
    return rows


def scenario_schema() -> dict[str, Any]:
    """A JSON Schema (draft 2020-12) of a scenario file. Strategy and selector options are free mappings here
    (each strategy validates its own at load time; ``fleetsim strategies`` lists them)."""
    schema = Scenario.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "fleetsim scenario"
    return schema


def profile_rows(directory: Path) -> list[tuple[str, ...]]:
    """One row per profile file in ``directory``: id, tier, memory GiB, train GFLOP/s, down and up Mbps
    (medians), online share, failure probability per update."""
    rows: list[tuple[str, ...]] = []
    for path in sorted(directory.glob("*.yaml")):
        p = load_profile(path)
        flops = p.train_flops_per_s / 1e9
        rows.append(
            (
                path.stem,
                p.tier,
                f"{p.usable_memory_gib:g}",
                f"{flops:,.1f}" if flops >= 10 else f"{flops:.2f}",
                f"{p.downlink_mbps.median_value():g}",
                f"{p.uplink_mbps.median_value():g}",
                "always" if p.availability is None else f"{p.availability.online_share:.0%}",
                f"{p.failure_prob_per_update:g}",
            )
        )
    return rows
