"""Layer-dropout schedules, one registered class per file in this folder (see :mod:`.base`).

Importing this package imports every module in it, so a schedule is available as soon as its file exists.
"""

from __future__ import annotations

import importlib
import pkgutil

from fleetsim.core.schedules.base import *  # noqa: F403  (the package's API is base's)
from fleetsim.core.schedules.base import __all__ as __all__

for _module in pkgutil.iter_modules(__path__):  # noqa: F405  (the package's own folder)
    if _module.name != "base":
        importlib.import_module(f"{__name__}.{_module.name}")
