"""Layer-dropout schedules, one registered class per file in this folder (see :mod:`.base`).

Importing this package imports every module in it, so a schedule is available as soon as its file exists.
"""

from __future__ import annotations

import importlib
import pkgutil

from fleetsim.core.schedules.base import (
    SCHEDULES,
    BernoulliSchedule,
    DropoutConfig,
    Schedule,
    ScheduleName,
    expected_active,
    max_active,
    register_schedule,
    sample_mask,
    stochastic_round,
)

__all__ = [
    "SCHEDULES",
    "BernoulliSchedule",
    "DropoutConfig",
    "Schedule",
    "ScheduleName",
    "expected_active",
    "max_active",
    "register_schedule",
    "sample_mask",
    "stochastic_round",
]

for _module in pkgutil.iter_modules(__path__):
    if _module.name != "base":
        importlib.import_module(f"{__name__}.{_module.name}")
