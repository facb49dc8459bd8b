"""Load a pretrained transformer for sequence classification or causal language modelling and wrap it with
peft LoRA.

The trainable state of a client update is the LoRA tensors plus, for classification, the (new)
classification head; a language model trains its LoRA tensors only (its head stays frozen). Blocks —
the transformer layers that layer dropout may skip — are found as the ``nn.ModuleList`` with
``config.num_hidden_layers`` entries, which covers BERT-style encoders and LLaMA-style decoders alike.
Models load from local files only: no model hub is reachable (offline assets, :mod:`.assets`).
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fleetsim.spec.scenario import LoraSpec
from fleetsim.train.blocks import find_blocks
from fleetsim.train.objectives import CLASSIFICATION, Objective, objective

__all__ = [
    "ModelBundle",
    "architectures",
    "count_blocks",
    "default_lora_targets",
    "load_model",
    "max_positions",
    "offline_hub",
]

# Attention query and value projections per model family (LoRA paper, Hu et al. 2021, §7.1).
_LORA_TARGETS: dict[str, list[str]] = {
    "bert": ["query", "value"],
    "roberta": ["query", "value"],
    "xlm-roberta": ["query", "value"],
    "distilbert": ["q_lin", "v_lin"],
    "llama": ["q_proj", "v_proj"],
    "mistral": ["q_proj", "v_proj"],
    "qwen2": ["q_proj", "v_proj"],
    "gpt2": ["c_attn"],
}


def default_lora_targets(model_type: str) -> list[str] | None:
    return _LORA_TARGETS.get(model_type)


def offline_hub() -> None:
    """Tell Hugging Face libraries loaded from here on that no hub is reachable (local files only)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def count_blocks(path: str | Path) -> int:
    """Number of transformer blocks of the model in ``path`` (``num_hidden_layers`` of its config)."""
    raw = json.loads((Path(path) / "config.json").read_text())
    if "num_hidden_layers" in raw:
        return int(raw["num_hidden_layers"])
    offline_hub()
    from transformers import AutoConfig

    return int(AutoConfig.from_pretrained(str(path), local_files_only=True).num_hidden_layers)


def architectures(path: str | Path) -> list[str]:
    """The model classes the config in ``path`` was saved from (``LlamaForCausalLM``, ``BertModel``, ...)."""
    return [str(name) for name in json.loads((Path(path) / "config.json").read_text()).get("architectures") or []]


def max_positions(path: str | Path) -> int | None:
    """The longest input the model in ``path`` takes (``max_position_embeddings``), if its config says."""
    raw = json.loads((Path(path) / "config.json").read_text())
    value = raw.get("max_position_embeddings", raw.get("n_positions"))
    return int(value) if value is not None else None


@dataclass
class ModelBundle:
    """A LoRA-wrapped model with what the rest of fleetsim needs to know about it."""

    model: nn.Module
    tokenizer: Any
    model_type: str
    blocks: nn.ModuleList  # the transformer blocks, in order
    trainable: dict[str, nn.Parameter]  # name → parameter: LoRA tensors and the head
    block_of: dict[str, int | None]  # trainable name → block index (None: outside the blocks, e.g. head)
    objective: Objective = CLASSIFICATION  # what it is trained to predict

    @property
    def num_blocks(self) -> int:
        return len(self.blocks)

    @property
    def lora_dropout(self) -> float:
        """Dropout on the LoRA path (it saves a mask per step, so it changes activation memory)."""
        config = getattr(self.model, "peft_config", {}).get("default")
        return float(getattr(config, "lora_dropout", 0.0) or 0.0)

    @property
    def frozen_param_bytes(self) -> int:
        """Bytes of every parameter that is not trained (they stay resident on the device)."""
        trainable = {id(p) for p in self.trainable.values()}
        return sum(p.numel() * p.element_size() for p in self.model.parameters() if id(p) not in trainable)

    @property
    def trainable_param_bytes(self) -> int:
        return sum(p.numel() * p.element_size() for p in self.trainable.values())

    @property
    def tensor_bytes(self) -> dict[str, int]:
        """Bytes of each trainable tensor (what travels when only some of them are shared)."""
        return {name: p.numel() * p.element_size() for name, p in self.trainable.items()}

    @property
    def device(self) -> torch.device:
        """Where the model's parameters are (CPU unless :meth:`to` moved them)."""
        return next(iter(self.trainable.values())).device

    def to(self, device: torch.device) -> ModelBundle:
        """Move the model to ``device`` in place (parameters keep their identity); returns ``self``."""
        self.model.to(device)
        return self

    def state(self) -> dict[str, torch.Tensor]:
        """A detached copy of the trainable tensors, on the CPU (where aggregation and recording happen)."""
        return {name: _cpu_copy(p) for name, p in self.trainable.items()}

    @torch.no_grad()
    def load_state(self, state: dict[str, torch.Tensor]) -> None:
        """Copy ``state`` into the trainable tensors (in place; shapes must match)."""
        for name, tensor in state.items():
            self.trainable[name].copy_(tensor)


def _cpu_copy(tensor: torch.Tensor) -> torch.Tensor:
    tensor = tensor.detach()
    return tensor.clone() if tensor.device.type == "cpu" else tensor.cpu()


def _quiet_transformers() -> None:
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)


class LoraTargetError(ValueError):
    """``model.lora.target_modules`` names no module of the model (or the model type has no default)."""

    def __init__(self, expected: str, got: object):
        self.expected, self.got = expected, got
        super().__init__(f"model.lora.target_modules: expected {expected}, got {got!r}")


def load_model(path: str, num_labels: int, lora: LoraSpec, init_seed: int, task: str = "classification") -> ModelBundle:
    """Load ``path`` (a local directory) as a sequence classifier with ``num_labels`` classes, or with
    ``task="causal_lm"`` as a language model (``num_labels`` unused), and attach LoRA.

    The new head (classification) and the LoRA matrices are initialised from ``init_seed`` on a forked torch
    RNG, so the same seed gives the same starting model and torch's global RNG is left as it was.
    """
    offline_hub()
    from peft import LoraConfig, TaskType, get_peft_model
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

    _quiet_transformers()
    config = AutoConfig.from_pretrained(path, local_files_only=True)
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    targets = lora.target_modules or default_lora_targets(config.model_type)
    if targets is None:
        raise LoraTargetError(f"module names to adapt (no default for model_type {config.model_type!r})", None)
    goal = objective(task)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(init_seed)
        if goal.causal:
            base = AutoModelForCausalLM.from_pretrained(
                path, dtype=torch.float32, pad_token_id=tokenizer.pad_token_id, local_files_only=True
            )
        else:
            base = AutoModelForSequenceClassification.from_pretrained(
                path,
                num_labels=num_labels,
                dtype=torch.float32,
                pad_token_id=tokenizer.pad_token_id,
                local_files_only=True,
            )
        peft_config = LoraConfig(
            task_type=TaskType.CAUSAL_LM if goal.causal else TaskType.SEQ_CLS,
            r=lora.r,
            lora_alpha=lora.alpha,  # type: ignore[arg-type]  # peft annotates int; floats work
            lora_dropout=lora.dropout,
            target_modules=targets,
        )
        modules = dict(base.named_modules())
        unknown = [t for t in targets if not any(n == t or n.endswith("." + t) for n in modules)]  # peft's rule
        if unknown:
            linear = sorted({n.rsplit(".", 1)[-1] for n, m in modules.items() if isinstance(m, torch.nn.Linear)})
            raise LoraTargetError(f"module names of this model (its linear layers: {', '.join(linear)})", unknown)
        model = get_peft_model(base, peft_config)
    blocks = find_blocks(model, config.num_hidden_layers)
    trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    owner: dict[int, int] = {}
    for index, block in enumerate(blocks):
        for p in block.parameters():
            owner[id(p)] = index
    block_of = {n: owner.get(id(p)) for n, p in trainable.items()}
    return ModelBundle(model, tokenizer, config.model_type, blocks, trainable, block_of, goal)
