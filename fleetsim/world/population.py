"""Fleets drawn from a measured phone population (device_profiles/populations/README.md).

``draw_population`` turns "N phones as the 2019 market" into fleet groups: N phones drawn uniformly with
replacement from the 333-phone AI-Benchmark list (FLASH's copy), each group one phone model with its RAM and
its compute scaled from a reference profile by its CPU floating-point AI-Benchmark score.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass

import numpy as np

from fleetsim.spec.profiles import BUILTIN_PROFILES_DIR, GIB, DeviceProfile

__all__ = ["POPULATIONS", "Phone", "draw_population", "read_population"]

POPULATIONS = {"ai_benchmark_2019": BUILTIN_PROFILES_DIR / "populations" / "ai_benchmark_2019.json"}
APP_MEMORY_SHARE = 0.375  # the per-app share of RAM the phone profiles use (phone_mid's source)


@dataclass(frozen=True)
class Phone:
    model: str
    ram_gib: float
    cpu_float_score: int
    year: int


@functools.lru_cache(maxsize=4)
def read_population(name: str) -> tuple[Phone, ...]:
    """The population's phones, in file order."""
    rows = json.loads(POPULATIONS[name].read_text())
    return tuple(
        Phone(r["Model"], float(r["RAM"].removesuffix("GB")), int(r["CPU_F_AI_Score"]), int(r["Year"])) for r in rows
    )


def draw_population(
    name: str, reference_id: str, reference: DeviceProfile, count: int, rng: np.random.Generator
) -> list[tuple[str, DeviceProfile, int]]:
    """``count`` phones of population ``name`` as fleet groups (profile id, profile, count), one per phone
    model drawn, in the population's order."""
    phones = read_population(name)
    median_score = float(np.median([p.cpu_float_score for p in phones]))
    drawn = np.bincount(rng.integers(0, len(phones), size=count), minlength=len(phones))
    groups = []
    for index in np.flatnonzero(drawn):
        phone = phones[int(index)]
        scale = phone.cpu_float_score / median_score
        profile = reference.model_copy(
            update={
                "name": f"{phone.model} ({phone.year})",
                "usable_memory_gib": phone.ram_gib * APP_MEMORY_SHARE,
                "train_flops_per_s": reference.train_flops_per_s * scale,
                "sources": {
                    **reference.sources,
                    "usable_memory_gib": f"D: {phone.ram_gib:g} GB RAM [{name}] x {APP_MEMORY_SHARE} (as phone_mid)",
                    "train_flops_per_s": f"D: {reference_id}'s {reference.train_flops_per_s:.3g} x CPU float score "
                    f"{phone.cpu_float_score} / median {median_score:g} [{name}]",
                },
            }
        )
        assert profile.usable_memory_bytes <= phone.ram_gib * GIB
        groups.append((f"{name}[{index}]:{phone.model}", profile, int(drawn[index])))  # models repeat in the list
    return groups
