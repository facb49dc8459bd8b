"""Where the files shipped with fleetsim are: the built-in device profiles and example scenarios.

In a source checkout they are the repository's top-level ``device_profiles/`` and ``scenarios/``; an installed
wheel carries copies inside the package (``fleetsim/device_profiles``, ``fleetsim/scenarios``; see
``pyproject.toml``).
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["BUILTIN_PROFILES_DIR", "BUILTIN_SCENARIOS_DIR", "shipped_dir"]

_PACKAGE = Path(__file__).resolve().parents[1]


def shipped_dir(name: str) -> Path:
    """The shipped folder ``name``: beside the package in a checkout, inside it when installed."""
    beside = _PACKAGE.parent / name
    if beside.is_dir() and (_PACKAGE.parent / "pyproject.toml").is_file():
        return beside
    return _PACKAGE / name


BUILTIN_PROFILES_DIR = shipped_dir("device_profiles")
BUILTIN_SCENARIOS_DIR = shipped_dir("scenarios")
