"""Device profiles: one reviewable YAML file per device type, every figure with its source.

A profile describes a *type* of device (a low-tier phone, a Jetson board). The fleet instantiates it
``count`` times; per-update variation (link speed, stragglers, failures) is drawn from the distributions
given here by :mod:`fleetsim.world.conditions`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, NonNegativeFloat, PositiveFloat, Tag, model_validator

from fleetsim.core.errors import InputError
from fleetsim.spec.schema import Strict, read_yaml_mapping, validate
from fleetsim.spec.shipped import BUILTIN_PROFILES_DIR

__all__ = [
    "BUILTIN_PROFILES_DIR",
    "Availability",
    "AvailabilityModel",
    "Battery",
    "Constant",
    "DeviceProfile",
    "Diurnal",
    "LinkType",
    "LogNormal",
    "Trace",
    "load_profile",
    "load_profiles",
    "with_availability",
    "with_compute_scale",
]

GIB = 1024**3


class Constant(Strict):
    """Always the same value."""

    dist: Literal["constant"]
    value: PositiveFloat

    def at(self, z: float) -> float:
        """The value at standard normal quantile ``z`` (always the same)."""
        return self.value

    def median_value(self) -> float:
        return self.value


class LogNormal(Strict):
    """``median · exp(sigma · N(0, 1))``: the usual model of link speeds and straggler slow-downs."""

    dist: Literal["lognormal"]
    median: PositiveFloat
    sigma: NonNegativeFloat

    def at(self, z: float) -> float:
        """The value for the standard normal draw ``z``."""
        return self.median * math.exp(self.sigma * z)

    def median_value(self) -> float:
        return self.median


Distribution = Annotated[Constant | LogNormal, Field(discriminator="dist")]


class Availability(Strict):
    """Alternating online/offline periods with exponentially distributed lengths (means in seconds)."""

    kind: Literal["exponential"] = "exponential"
    mean_online_s: PositiveFloat
    mean_offline_s: PositiveFloat

    @property
    def online_share(self) -> float:
        """Long-run fraction of time online: on / (on + off)."""
        return self.mean_online_s / (self.mean_online_s + self.mean_offline_s)


class Diurnal(Strict):
    """One online window a day, in the device's local night (idle, charging, on Wi-Fi).

    Each local day's window starts at ``N(start_h, start_sd_h)`` local time (kept within ±3 h of
    ``start_h``) and lasts ``N(hours, hours_sd)`` hours (kept within [0.5, 17] h), so windows never overlap.
    Devices are spread over ``utc_offsets_h`` in turn (device i of a fleet group in zone i mod len).
    """

    kind: Literal["diurnal"]
    start_h: float = Field(22.0, ge=0.0, lt=24.0, description="mean local hour the window opens")
    start_sd_h: NonNegativeFloat = Field(1.0, le=3.0)
    hours: float = Field(8.0, ge=0.5, le=17.0, description="mean window length, hours")
    hours_sd: NonNegativeFloat = 1.5
    utc_offsets_h: list[float] = Field(default_factory=lambda: [0.0], min_length=1)

    @property
    def online_share(self) -> float:
        """Approximate long-run fraction of time online: hours / 24."""
        return self.hours / 24


class Trace(Strict):
    """Replay of measured online intervals: a CSV or Parquet file with columns ``device`` (any id),
    ``online_start_s``, ``online_end_s`` (seconds from the run's start). The k-th device of a fleet group
    replays the k-th trace device (ids sorted; cycling when the group is larger); a device is offline
    outside its intervals and after the last one. ``file`` is relative to the file that names it."""

    kind: Literal["trace"]
    file: str

    @property
    def online_share(self) -> float:
        return math.nan


def _availability_kind(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("kind", "exponential"))
    return str(getattr(value, "kind", "exponential"))


AvailabilityModel = Annotated[
    Annotated[Availability, Tag("exponential")] | Annotated[Diurnal, Tag("diurnal")] | Annotated[Trace, Tag("trace")],
    Discriminator(_availability_kind),
]


class Battery(Strict):
    """A battery drained by the device's work and idle use and refilled in a nightly charging window.

    The level (Wh) falls by the device's power while it works (``train_power_w`` computing, ``radio_power_w``
    transferring) and by ``idle_drain_w`` otherwise, and rises by ``charge_w`` minus that power inside a
    charging window (capped at ``capacity_wh``). Outside a charging window a device whose level falls to
    ``leave_below_frac`` of capacity leaves (an update in progress is lost as ``offline``); it returns when
    its next charging window opens. Charging windows follow ``charging`` (a diurnal pattern of their own).
    Each device starts at a level drawn uniformly in [``start_min_frac``, ``start_max_frac``] of capacity.
    """

    capacity_wh: PositiveFloat
    leave_below_frac: float = Field(0.2, ge=0.0, lt=1.0, description="leave at or below this share of capacity")
    idle_drain_w: NonNegativeFloat = Field(description="power drawn when not training or charging (screen, apps)")
    charge_w: PositiveFloat = Field(description="charger power reaching the battery")
    charging: Diurnal = Field(
        default_factory=lambda: Diurnal(kind="diurnal"), description="when the device is on its charger"
    )
    start_min_frac: float = Field(0.5, ge=0.0, le=1.0)
    start_max_frac: float = Field(1.0, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _start_range(self) -> Battery:
        if self.start_min_frac > self.start_max_frac:
            raise ValueError("start_min_frac must not exceed start_max_frac")
        return self


class LinkType(Strict):
    """One kind of network link (Wi-Fi, 4G, 5G): the share of devices on it and its speeds."""

    share: float = Field(gt=0.0, le=1.0, description="share of the devices that use this link")
    downlink_mbps: Distribution
    uplink_mbps: Distribution


# Fields that hold a figure and therefore need an entry in ``sources``.
FIGURE_FIELDS = (
    "usable_memory_gib",
    "train_flops_per_s",
    "downlink_mbps",
    "uplink_mbps",
    "link_latency_s",
    "availability",
    "failure_prob_per_update",
    "straggler_sigma",
    "train_power_w",
    "radio_power_w",
)


# Optional figures: cited when given (not null and not zero).
OPTIONAL_FIGURE_FIELDS = ("memory_bytes_per_s", "kernel_overhead_s", "links", "battery")


def check_link_shares(links: dict[str, LinkType], prefix: str = "") -> dict[str, LinkType]:
    """``links`` unchanged if its types' shares add up to 1; else ``ValueError``."""
    total = sum(t.share for t in links.values())
    if not math.isclose(total, 1.0):
        raise ValueError(f"{prefix}shares that add up to 1 (these add up to {total:g})")
    return links


class DeviceProfile(Strict):
    """A device type. Units are in the field names; ``sources`` cites every figure.

    A source starting with ``E:`` marks an estimate and must show the arithmetic that produced it.
    """

    name: str = Field(description="human-readable name")
    tier: str = Field(description="group used in reports, e.g. phone-low, phone-high, edge-board")
    description: str = ""
    usable_memory_gib: PositiveFloat = Field(description="memory one app/process may use for training")
    train_flops_per_s: PositiveFloat = Field(description="sustained FLOP/s of LoRA training (fwd+bwd)")
    memory_bytes_per_s: PositiveFloat | None = Field(
        None,
        description="sustained memory bandwidth of training's non-matmul work (shape-aware compute model); "
        "null: compute time is FLOPs / train_flops_per_s alone",
    )
    kernel_overhead_s: NonNegativeFloat = Field(
        0.0, description="host time per dispatched tensor operation (shape-aware compute model)"
    )
    training_stack: str = Field(
        "unspecified",
        description="the training software train_flops_per_s describes: measured with a named trainer, or "
        "estimated from optimized inference kernels (an upper bound for training)",
    )
    downlink_mbps: Distribution = Field(description="server→device throughput per transfer, Mbit/s")
    uplink_mbps: Distribution = Field(description="device→server throughput per transfer, Mbit/s")
    link_latency_s: NonNegativeFloat = Field(0.0, description="added once per transfer")
    links: dict[str, LinkType] | None = Field(
        None,
        description="link types by name (e.g. wifi, 4g, 5g), each device assigned one by share; its speeds "
        "replace downlink_mbps and uplink_mbps (link_latency_s stays). null: every device uses those",
    )
    availability: AvailabilityModel | None = Field(
        description="online/offline churn (exponential, diurnal or trace); null = always online"
    )
    failure_prob_per_update: float = Field(ge=0.0, lt=1.0, description="chance an update is lost midway")
    straggler_sigma: NonNegativeFloat = Field(description="lognormal sigma of a per-update compute slow-down")
    battery: Battery | None = Field(None, description="null: mains-powered or never limited by its battery")
    train_power_w: PositiveFloat = Field(description="device power while training")
    radio_power_w: NonNegativeFloat = Field(description="device power while transferring")
    sources: dict[str, str] = Field(description="field name → citation or 'E: arithmetic'")

    @model_validator(mode="after")
    def _every_figure_cited(self) -> DeviceProfile:
        optional = [f for f in OPTIONAL_FIGURE_FIELDS if getattr(self, f)]  # given (not null, not zero)
        missing = [f for f in (*FIGURE_FIELDS, *optional) if f not in self.sources]
        if missing:
            raise ValueError(f"a source for every figure; missing for {missing}")
        if self.links is not None:
            check_link_shares(self.links, "links: ")
        return self

    @property
    def usable_memory_bytes(self) -> int:
        return int(self.usable_memory_gib * GIB)


def load_profile(path: Path) -> DeviceProfile:
    """Load and validate one profile file (a trace's file is made absolute, relative to the profile's)."""
    profile = validate(DeviceProfile, read_yaml_mapping(path), path)
    return with_availability(profile, profile.availability, path.parent)


def with_availability(profile: DeviceProfile, avail: AvailabilityModel | None, base_dir: Path) -> DeviceProfile:
    """``profile`` with ``avail``; a trace's file resolved against ``base_dir``."""
    if isinstance(avail, Trace):
        avail = avail.model_copy(update={"file": str((base_dir / avail.file).resolve())})
    return profile.model_copy(update={"availability": avail})


def load_profiles(
    directory: Path | None, ids: list[str], field_paths: list[str], scenario_file: Path
) -> dict[str, DeviceProfile]:
    """Load the profiles named ``ids``: file stems in ``directory`` (the scenario's own profiles, if any) or
    else among the built-in profiles — a profile of ``directory`` overrides a built-in of the same name.

    ``field_paths[i]`` is the scenario field that named ``ids[i]``, for the error message.
    """
    if directory is not None and not directory.is_dir():
        raise InputError(scenario_file, "profiles_dir", "an existing directory of device profiles", str(directory))
    folders = [d for d in (directory, BUILTIN_PROFILES_DIR) if d is not None]
    files: dict[str, Path] = {}
    for folder in reversed(folders):  # the scenario's own last, so they win
        files |= {p.stem: p for p in folder.glob("*.yaml")}
    out: dict[str, DeviceProfile] = {}
    for pid, field in zip(ids, field_paths, strict=True):
        if pid not in files:
            where = " or ".join(str(f) for f in folders)
            raise InputError(scenario_file, field, f"a profile in {where} ({', '.join(sorted(files))})", pid)
        if pid not in out:
            out[pid] = load_profile(files[pid])
    return out


def with_compute_scale(profile: DeviceProfile, scale: float) -> DeviceProfile:
    """``profile`` training ``scale`` times as fast: FLOP/s and memory bandwidth x ``scale``, per-operation
    overhead / ``scale``; its ``sources`` and ``training_stack`` record the factor."""
    note = f" x {scale:g} (the scenario's compute_scale)"
    update: dict[str, object] = {
        "train_flops_per_s": profile.train_flops_per_s * scale,
        "kernel_overhead_s": profile.kernel_overhead_s / scale,
        "training_stack": f"{profile.training_stack}; scaled{note}",
        "sources": {**profile.sources, "train_flops_per_s": profile.sources["train_flops_per_s"] + note},
    }
    if profile.memory_bytes_per_s is not None:
        update["memory_bytes_per_s"] = profile.memory_bytes_per_s * scale
    return profile.model_copy(update=update)
