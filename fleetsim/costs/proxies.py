"""Cost-model proxies: architectures too big to train here, built on the ``meta`` device to cost updates.

A scenario may set ``cost_model: {arch: llama-2-7b, weight_dtype: int4}``. The named architecture is built
from its configuration with no weights allocated (``torch.device("meta")``), LoRA is attached as for the
trained model, and one forward + backward is counted on meta tensors (FLOPs and saved-activation bytes
need shapes only). Device compute time and memory then follow the proxy while the small model is trained
for accuracy; ``summary.json`` records that a proxy was in use.

Weight storage per parameter (frozen weights): fp32 4 B, fp16/bf16 2 B, int8 34/32 B and int4 18/32 B
(llama.cpp Q8_0 / Q4_0 blocks: 32 weights plus one fp16 scale). Compute (activations, LoRA) runs in fp32
for fp32 weights and in bf16 otherwise (as in QLoRA, Dettmers et al. 2023).
"""

from __future__ import annotations

import resource
import time
from typing import Any, Literal

import numpy as np
import torch

from fleetsim.costs.counting import Counter, StepCost, count_step
from fleetsim.train.blocks import BlockSwitch, find_blocks, train_top_blocks

__all__ = ["ARCHITECTURES", "WEIGHT_BYTES", "MetaCounter"]

WEIGHT_BYTES = {"fp32": 4.0, "fp16": 2.0, "bf16": 2.0, "int8": 34 / 32, "int4": 18 / 32}

# Published shapes (config.json of each release).
ARCHITECTURES: dict[str, dict[str, Any]] = {
    "llama-2-7b": {
        "model_type": "llama",
        "hidden_size": 4096,
        "intermediate_size": 11008,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 32,
        "vocab_size": 32000,
        "max_position_embeddings": 4096,
    },
    "llama-2-13b": {
        "model_type": "llama",
        "hidden_size": 5120,
        "intermediate_size": 13824,
        "num_hidden_layers": 40,
        "num_attention_heads": 40,
        "num_key_value_heads": 40,
        "vocab_size": 32000,
        "max_position_embeddings": 4096,
    },
    "roberta-large": {
        "model_type": "roberta",
        "hidden_size": 1024,
        "intermediate_size": 4096,
        "num_hidden_layers": 24,
        "num_attention_heads": 16,
        "vocab_size": 50265,
        "max_position_embeddings": 514,
        "type_vocab_size": 1,
    },
    "roberta-base": {
        "model_type": "roberta",
        "hidden_size": 768,
        "intermediate_size": 3072,
        "num_hidden_layers": 12,
        "num_attention_heads": 12,
        "vocab_size": 50265,
        "max_position_embeddings": 514,
        "type_vocab_size": 1,
    },
    "smollm2-135m": {
        "model_type": "llama",
        "hidden_size": 576,
        "intermediate_size": 1536,
        "num_hidden_layers": 30,
        "num_attention_heads": 9,
        "num_key_value_heads": 3,
        "vocab_size": 49152,
        "max_position_embeddings": 8192,
        "tie_word_embeddings": True,
    },
    "gemma-3-270m": {  # google/gemma-3-270m config.json; EdgeFlowerTune's phone/Jetson measurements use it
        "model_type": "gemma3_text",
        "hidden_size": 640,
        "intermediate_size": 2048,
        "num_hidden_layers": 18,
        "num_attention_heads": 4,
        "num_key_value_heads": 1,
        "head_dim": 256,
        "vocab_size": 262144,
        "max_position_embeddings": 32768,
        "sliding_window": 512,
        "tie_word_embeddings": True,
    },
}

_LORA_TARGETS = {"llama": ["q_proj", "v_proj"], "roberta": ["query", "value"], "gemma3_text": ["q_proj", "v_proj"]}


class MetaCounter(Counter):
    """Counts training steps of a named architecture on the meta device (no weights allocated)."""

    def __init__(
        self,
        arch: str,
        weight_dtype: str,
        num_labels: int,
        lora_r: int,
        lora_alpha: float,
        task: Literal["sequence_classification", "causal_lm"] = "sequence_classification",
    ):
        """``task``: the head counted — a classifier over ``num_labels`` or the language-model head over the
        vocabulary (next-token loss on every position)."""
        from peft import LoraConfig, TaskType, get_peft_model
        from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSequenceClassification

        start = time.perf_counter()
        spec = dict(ARCHITECTURES[arch])
        model_type = spec.pop("model_type")
        config = AutoConfig.for_model(model_type, num_labels=num_labels, pad_token_id=0, **spec)
        compute = torch.float32 if weight_dtype == "fp32" else torch.bfloat16
        causal = task == "causal_lm"
        lora = LoraConfig(
            task_type=TaskType.CAUSAL_LM if causal else TaskType.SEQ_CLS,
            r=lora_r,
            lora_alpha=lora_alpha,  # type: ignore[arg-type]
            target_modules=_LORA_TARGETS[model_type],
        )
        with torch.random.fork_rng(devices=[]):  # weights are never used: leave torch's global RNG as it was
            with torch.device("meta"):
                auto = AutoModelForCausalLM if causal else AutoModelForSequenceClassification
                base = auto.from_config(config, dtype=compute)
            self.model = get_peft_model(base, lora)
        self.arch, self.weight_dtype, self.task = arch, weight_dtype, task
        self.n_blocks = int(config.num_hidden_layers)
        trainable = [p for p in self.model.parameters() if p.requires_grad]
        frozen = [p for p in self.model.parameters() if not p.requires_grad]
        self.frozen_params = sum(p.numel() for p in frozen)
        self.frozen_bytes = int(self.frozen_params * WEIGHT_BYTES[weight_dtype])
        self.trainable_bytes = sum(p.numel() * p.element_size() for p in trainable)
        self.switch = BlockSwitch(self.model, find_blocks(self.model, self.n_blocks))
        self.build_s = time.perf_counter() - start

    def identity(self) -> dict[str, object]:
        return {
            "kind": "meta",
            "arch": self.arch,
            "dtype": self.weight_dtype,
            **({"task": self.task} if self.task != "sequence_classification" else {}),
            "frozen": self.frozen_params,
            "trainable": self.trainable_bytes,
        }

    def count(self, batch_size: int, seq_len: int, n_active: int, trainable_depth: int | None = None) -> StepCost:
        ids = torch.ones(batch_size, seq_len, dtype=torch.long, device="meta")
        shape = (batch_size, seq_len) if self.task == "causal_lm" else (batch_size,)
        labels = torch.zeros(shape, dtype=torch.long, device="meta")
        # No attention mask: building one calls .item() on meta tensors; the FLOPs are the same.
        mask = np.arange(self.n_blocks) < n_active
        with self.switch.active(mask), train_top_blocks(self.switch.blocks, trainable_depth):
            return count_step(self.model, {"input_ids": ids, "labels": labels})

    def describe(self) -> dict[str, object]:
        return {
            "proxy": self.arch,
            "weight_dtype": self.weight_dtype,
            "blocks": self.n_blocks,
            "frozen_params": self.frozen_params,
            "build_s": self.build_s,
            "host_max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }
