"""Analytic FLOPs of one LoRA training step, to check the counted FLOPs against (within a few percent).

Matmul FLOPs only, 2 per multiply-add (Kaplan et al. 2020, "Scaling laws", §2.1: C_forward ≈ 2N per token,
plus attention 2·n_ctx·d per layer per token for scores and again for the weighted sum). With frozen
weights the backward pass computes gradients with respect to inputs only (1× the forward of a frozen
matmul); LoRA and the head also need weight gradients (2×); attention products need gradients for both
operands (2×). The first block that runs gets its input from the frozen embeddings, which need no
gradient, so its q/k/v projections and the LoRA A matrices there skip the input-gradient matmul.
"""

from __future__ import annotations

from typing import Any

__all__ = ["analytic_step_flops"]


def analytic_step_flops(config: Any, batch: int, seq: int, n_active: int, lora_r: int, num_labels: int) -> float:
    """FLOPs of forward + backward of one step running ``n_active`` blocks (LoRA on q and v)."""
    d = config.hidden_size
    f = config.intermediate_size
    tokens = batch * seq
    llama = config.model_type in ("llama", "mistral", "qwen2")
    if llama:
        d_kv = d * config.num_key_value_heads // config.num_attention_heads
        qkv = 2 * tokens * (d * d + 2 * d * d_kv)
        out = 2 * tokens * d * d
        ffn = 2 * tokens * 3 * d * f  # gate, up, down
        lora = 2 * tokens * (d * lora_r + lora_r * d) + 2 * tokens * (d * lora_r + lora_r * d_kv)
        lora_a_input = 2 * tokens * 2 * lora_r * d  # gradient w.r.t. the input of the two A matrices
        head = 2 * tokens * d * num_labels  # the score layer runs on every position
        head_bwd = 2 * head
    else:
        qkv = 2 * tokens * 3 * d * d
        out = 2 * tokens * d * d
        ffn = 2 * tokens * 2 * d * f
        lora = 2 * 2 * tokens * (d * lora_r + lora_r * d)
        lora_a_input = 2 * tokens * 2 * lora_r * d
        pooler = 2 * batch * d * d
        classifier = 2 * batch * d * num_labels
        head = pooler + classifier
        head_bwd = pooler + 2 * classifier  # pooler frozen: input gradient only
    attention = 2 * 2 * batch * seq * seq * d  # scores Q·Kᵀ and weights·V
    forward_block = qkv + out + ffn + lora + attention
    backward_block = qkv + out + ffn + 2 * lora + 2 * attention
    if n_active == 0:
        return float(head + head_bwd)
    first_block_saving = qkv + lora_a_input
    total = n_active * (forward_block + backward_block) - first_block_saving
    return float(total + head + head_bwd)
