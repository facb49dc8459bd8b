"""The scenario: a typed, frozen description of one simulated run, and ``--set key=value`` overrides.

The schema checks keys, types and ranges; the ids it names (profiles, model, dataset, strategy) are
cross-checked when a scenario is loaded (:mod:`fleetsim.app.loading`).
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, Field, NonNegativeInt, PositiveFloat, PositiveInt, model_validator

from fleetsim.core.errors import InputError
from fleetsim.spec.profiles import (
    AvailabilityModel,
    Battery,
    DeviceProfile,
    LinkType,
    check_link_shares,
    with_availability,
    with_compute_scale,
)
from fleetsim.spec.schema import Strict

__all__ = ["OutageSpec", "Scenario", "apply_overrides"]


class FleetEntry(Strict):
    """A group of devices: ``count`` of one profile, or ``count`` phones drawn from a population."""

    profile: str | None = Field(None, description="device profile id: a file stem in profiles_dir")
    population: Literal["ai_benchmark_2019"] | None = Field(
        None, description="draw phones from this measured population instead (needs reference)"
    )
    reference: str | None = Field(
        None, description="population: the profile whose figures the median phone has (others scale by score)"
    )
    count: PositiveInt = Field(description="how many devices")
    availability: AvailabilityModel | None = Field(
        None, description="this group's availability instead of the profile's (trace files relative to the scenario)"
    )
    battery: Battery | None = Field(None, description="this group's battery instead of the profile's")
    links: Annotated[dict[str, LinkType], AfterValidator(check_link_shares)] | None = Field(
        None, description="this group's link types instead of the profile's (shares add up to 1)"
    )
    compute_scale: PositiveFloat = Field(
        1.0,
        description="this group's training speed x this: train_flops_per_s and memory_bytes_per_s multiplied, "
        "kernel_overhead_s divided (a what-if for a faster or slower training stack; 1: the profile's figures)",
    )

    @model_validator(mode="after")
    def _one_source(self) -> FleetEntry:
        if (self.profile is None) == (self.population is None):
            raise ValueError("either profile or population (with reference)")
        if self.population is not None and self.reference is None:
            raise ValueError("population needs reference: the profile of its median phone")
        return self

    @property
    def profile_id(self) -> str:
        """The profile this entry loads: its own, or its population's reference."""
        return self.profile or self.reference or ""

    def group_profile(self, profile: DeviceProfile, base_dir: Path) -> DeviceProfile:
        """``profile`` as this group's devices have it: the group's own availability (a trace file relative
        to ``base_dir``), battery and links where it sets them, and its compute scale."""
        if self.availability is not None:
            profile = with_availability(profile, self.availability, base_dir)
        own = {k: getattr(self, k) for k in ("battery", "links") if getattr(self, k) is not None}
        if own:
            profile = profile.model_copy(update=own)
        return profile if self.compute_scale == 1.0 else with_compute_scale(profile, self.compute_scale)


class OutageSpec(Strict):
    """Correlated outages: a share of a set of devices goes offline together (a regional network or power
    failure, an app update), either in the given windows or at random: outages start as a Poisson process
    (mean gap ``mean_interval_s``) and last an exponential time (mean ``mean_duration_s``). Each outage takes
    each eligible device with probability ``fraction``; eligible are the devices of ``tiers`` and
    ``profiles`` (null: every device)."""

    windows_s: list[tuple[float, float]] | None = Field(
        None, description="scheduled outages as [start_s, end_s] pairs (instead of random ones)"
    )
    mean_interval_s: PositiveFloat | None = Field(None, description="random outages: mean time between starts")
    mean_duration_s: PositiveFloat | None = Field(None, description="random outages: mean length")
    fraction: float = Field(1.0, gt=0.0, le=1.0, description="chance each eligible device is hit by an outage")
    tiers: list[str] | None = Field(None, description="only devices of these tiers (null: any)")
    profiles: list[str] | None = Field(None, description="only devices of these profile ids (null: any)")

    @model_validator(mode="after")
    def _scheduled_or_random(self) -> OutageSpec:
        random = self.mean_interval_s is not None and self.mean_duration_s is not None
        if (self.windows_s is not None) == random or (not random and self.mean_interval_s is not None):
            raise ValueError("either windows_s, or mean_interval_s with mean_duration_s")
        for start, end in self.windows_s or []:
            if not 0 <= start < end:
                raise ValueError(f"windows_s with 0 <= start_s < end_s (not [{start:g}, {end:g}])")
        return self


class LoraSpec(Strict):
    r: PositiveInt = 8
    alpha: PositiveFloat = 16.0
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    # null: the model family's attention query and value projections (Hu et al. 2021, LoRA §7.1).
    target_modules: list[str] | None = Field(None, min_length=1)


class ModelSpec(Strict):
    id: str = Field(description="catalogue id (minilm-l6, smollm2-135m) or a local Hugging Face directory")
    lora: LoraSpec = LoraSpec()


class PartitionSpec(Strict):
    kind: Literal["dirichlet", "iid", "by_column"] = Field(
        "dirichlet",
        description="dirichlet: per-class Dirichlet(alpha) shares; iid: equal random shares; by_column: each "
        "device is one natural user, the examples sharing a value of `column`",
    )
    # Dirichlet concentration of per-device label mixes (Hsu et al. 2019): small = very non-IID.
    alpha: PositiveFloat = 0.5
    min_samples_per_device: PositiveInt = 8
    column: str | None = Field(None, description="by_column: the dataset column naming each example's user")

    @model_validator(mode="after")
    def _column_for_by_column(self) -> PartitionSpec:
        if (self.kind == "by_column") != (self.column is not None):
            raise ValueError("column with kind by_column (and only then)")
        return self


class DatasetSpec(Strict):
    """A catalogue dataset (``id``) or the user's own file (``path``) with a text and a label column."""

    id: str | None = Field(
        None, description="catalogue id: reuters-r8, reuters-r52, 20newsgroups, rotten-tomatoes, bbc-news"
    )
    path: str | None = Field(
        None,
        description="your own data: a CSV, Parquet or JSON Lines file, or a Hugging Face save_to_disk folder "
        "(relative to the scenario)",
    )
    format: Literal["csv", "parquet", "jsonl", "hf_disk"] | None = Field(
        None, description="null: from the file's suffix (a folder: hf_disk)"
    )
    text: str = Field("text", description="path: the column holding the text")
    label: str = Field(
        "label",
        description="path: the column holding the class (task causal_lm: optional; it only shapes a "
        "dirichlet partition)",
    )
    test_path: str | None = Field(None, description="path: a separate test file (same format and columns)")
    test_fraction: float = Field(
        0.2, gt=0.0, lt=1.0, description="path without test_path: the share of rows held out for testing"
    )
    partition: PartitionSpec = PartitionSpec()
    local_test_examples: PositiveInt = Field(32, description="per-device held-out examples, the device's label mix")

    @model_validator(mode="after")
    def _id_or_path(self) -> DatasetSpec:
        if (self.id is None) == (self.path is None):
            raise ValueError("either id (a catalogue dataset) or path (your own file)")
        return self

    @property
    def name(self) -> str:
        """How reports name the dataset: its catalogue id or its file name."""
        return self.id or str(self.path).rstrip("/").split("/")[-1]


class OptimizerSpec(Strict):
    name: str = Field("adamw", description="a registered optimizer (adamw, sgd), checked at load time")
    lr: PositiveFloat = 1e-3
    weight_decay: float = Field(0.0, ge=0.0)


class TrainingSpec(Strict):
    local_steps: PositiveInt = Field(description="optimizer steps per client update")
    batch_size: PositiveInt
    seq_len: PositiveInt = Field(description="tokens per example (padded/truncated), for train and eval")
    optimizer: OptimizerSpec = OptimizerSpec()
    mode: Literal["real", "none"] = Field(
        "real",
        description="none: systems mode — no model is trained or evaluated (accuracy absent); costs and "
        "simulated times are the same as with real training",
    )

    @property
    def trains(self) -> bool:
        """Whether delivered updates are trained and the model evaluated (not systems mode)."""
        return self.mode == "real"

    # Where and how the host trains delivered updates. None of these changes simulated time or memory
    # (those come from the device profiles and the fp32 cost model); bf16 and a GPU change accuracy columns.
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto: CUDA when available, else CPU")
    precision: Literal["fp32", "bf16"] = Field(
        "fp32", description="bf16: autocast forward passes; LoRA weights and optimizer state stay fp32"
    )
    compile: bool = Field(False, description="torch.compile the model (first steps pay the compile time)")


class RoundsSpec(Strict):
    mode: Literal["sync", "overcommit", "async"] = Field(
        "sync",
        description="sync: a round waits for every selected device (or the deadline); overcommit: "
        "select ceil((1 + overcommit) * clients_per_round), keep the first clients_per_round to arrive; "
        "async (FedBuff): keep concurrency updates in flight, aggregate every clients_per_round arrivals",
    )
    clients_per_round: PositiveInt = Field(description="sync/overcommit: K per round; async: the buffer size")
    overcommit: float = Field(0.3, ge=0.0, description="overcommit mode: extra share of devices selected")
    concurrency: PositiveInt | None = Field(None, description="async: updates in flight (null: 2 x clients_per_round)")
    max_staleness: NonNegativeInt = Field(
        10, description="async: an update that started more than this many aggregations ago is dropped (stale)"
    )
    staleness_exponent: float = Field(
        0.5, ge=0.0, description="async: an update s aggregations stale weighs (1 + s)^-exponent (FedBuff: 0.5)"
    )
    deadline_s: PositiveFloat = Field(description="a round ends when all selected report or this passes")
    commit_every: PositiveInt = Field(
        1, description="rows and a checkpoint are written every this many rounds (raise it for long async runs)"
    )
    min_available: PositiveInt = Field(1, description="wait (retry_s) until at least this many are online")
    retry_s: PositiveFloat = 60.0


class ServerSpec(Strict):
    """The server's own links, each shared max-min fairly by the transfers in flight (null: not capped)."""

    downlink_mbps: PositiveFloat | None = Field(
        None, description="what the server sends at most, Mbit/s, shared by the downloads in flight"
    )
    uplink_mbps: PositiveFloat | None = Field(
        None, description="what the server receives at most, Mbit/s, shared by the uploads in flight"
    )

    @property
    def capped(self) -> bool:
        return self.downlink_mbps is not None or self.uplink_mbps is not None


class StopSpec(Strict):
    max_rounds: PositiveInt | None = None
    target_accuracy: float | None = Field(
        None, gt=0.0, le=1.0, description="test accuracy that ends the run (causal_lm: next-token accuracy)"
    )
    target_perplexity: float | None = Field(
        None, ge=1.0, description="task causal_lm: test perplexity at or below which the run ends"
    )
    max_sim_time_s: PositiveFloat | None = None
    # Keep going after the target is reached, until max_rounds / max_sim_time_s.
    continue_after_target: bool = False

    @model_validator(mode="after")
    def _something_stops(self) -> StopSpec:
        if self.max_rounds is None and self.max_sim_time_s is None:
            raise ValueError("max_rounds or max_sim_time_s (a run must end)")
        return self


class EvaluationSpec(Strict):
    every_rounds: PositiveInt = 1
    max_examples: PositiveInt | None = Field(1000, description="fixed random subset of the test split")
    batch_size: PositiveInt = 64
    personalized_devices: NonNegativeInt = Field(
        16, description="devices (a fixed random sample) whose own model is scored on their local test data"
    )


class StrategySpec(Strict):
    name: str = Field("fedlora", description="a registered strategy, checked at load time")
    options: dict[str, Any] = Field(default_factory=dict, description="validated by the strategy itself")


class SelectionSpec(Strict):
    """Which of the trainable online devices train each round."""

    name: str = Field("uniform", description="a registered selector (uniform, deadline_aware, oort), checked at load")
    options: dict[str, Any] = Field(default_factory=dict, description="validated by the selector itself")


class CostModelSpec(Strict):
    """Cost device time and memory on another architecture (built on the meta device) than the one trained."""

    arch: str = Field(description="a known architecture (llama-2-7b, roberta-large, ...), checked at load time")
    weight_dtype: str = Field("fp16", description="storage of the frozen weights (fp32, fp16, bf16, int8, int4)")


class ExecutorSpec(Strict):
    """Who trains a round's delivered updates on the host. Every executor gives the same tables."""

    kind: str = Field("inline", description="a registered executor (inline, process, ray), checked at load time")
    workers: PositiveInt = Field(2, description="process and ray: worker processes or actors")
    threads_per_worker: PositiveInt | None = Field(
        None, description="torch threads per worker (inline: of this process); null: CPUs / workers (inline: as is)"
    )
    address: str | None = Field(None, description="ray: an existing cluster's address; null: a local Ray")


class Scenario(Strict):
    """One run. Field paths in errors follow this tree."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    seed: NonNegativeInt
    description: str = ""
    output_dir: str = Field("runs", description="run directories go here (relative to the working dir)")
    profiles_dir: str | None = Field(
        None,
        description="a folder of your own profiles, added to the built-in ones (a profile of the same name "
        "overrides the built-in); null: ../device_profiles next to the scenario's folder, if there is one",
    )
    fleet: list[FleetEntry] = Field(min_length=1)
    task: Literal["classification", "causal_lm"] = Field(
        "classification",
        description="classification: a head over the dataset's labels; causal_lm: next-token prediction on "
        "the text (decoder models), scored by perplexity and next-token accuracy",
    )
    model: ModelSpec
    dataset: DatasetSpec
    training: TrainingSpec
    rounds: RoundsSpec
    server: ServerSpec = ServerSpec()
    stop: StopSpec
    evaluation: EvaluationSpec = EvaluationSpec()
    strategy: StrategySpec = StrategySpec()
    selection: SelectionSpec = SelectionSpec()
    cost_model: CostModelSpec | None = Field(None, description="null: cost the trained model itself")
    executor: ExecutorSpec = ExecutorSpec()
    outages: list[OutageSpec] = Field(default_factory=list, description="correlated outages of groups of devices")

    @property
    def language_model(self) -> bool:
        """Whether the run fine-tunes a language model (``task: causal_lm``): perplexity, no majority class."""
        return self.task == "causal_lm"

    @property
    def fleet_size(self) -> int:
        return sum(e.count for e in self.fleet)


_KEY = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)((?:\[\d+\])*)$")


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``key=value`` overrides to a raw scenario tree (values parsed as YAML).

    Keys are dotted paths; list items by ``[i]`` or ``.i`` (``fleet[0].count=3``, ``fleet.0.count=3``).
    """
    out = copy.deepcopy(raw)
    for item in overrides:
        if "=" not in item:
            raise InputError("--set", item, "key=value", item)
        key, text = item.split("=", 1)
        try:
            value = yaml.safe_load(text) if text != "" else None
        except yaml.YAMLError:
            value = text
        parts: list[str | int] = []
        for piece in key.strip().split("."):
            if piece.isdigit():
                parts.append(int(piece))
                continue
            match = _KEY.match(piece)
            if not match:
                raise InputError("--set", key, "a dotted field path such as training.local_steps", key)
            parts.append(match.group(1))
            parts.extend(int(i) for i in re.findall(r"\[(\d+)\]", match.group(2)))
        _set_path(out, parts, value, key)
    return out


def _set_path(node: Any, parts: list[str | int], value: Any, key: str) -> None:
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        if isinstance(part, int):
            if not isinstance(node, list) or part >= len(node):
                size = len(node) if isinstance(node, list) else 0
                raise InputError("--set", key, f"an existing list index (< {size})", part)
            if last:
                node[part] = value
            else:
                node = node[part]
        else:
            if not isinstance(node, dict):
                raise InputError("--set", key, "a path through mappings", part)
            if last:
                node[part] = value
            else:
                node = node.setdefault(part, {})
