"""Where the host trains (CPU or a CUDA GPU) and at which precision.

``bf16`` is mixed precision: forward passes run under ``torch.autocast`` with bfloat16, while the weights,
the LoRA tensors, their gradients and the optimizer state stay fp32 (Micikevicius et al. 2018, "Mixed
Precision Training", arXiv 1710.03740). Evaluation always runs at fp32, so accuracy columns measure the
model, not the arithmetic it was scored with.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

__all__ = ["cuda_available", "resolve_device", "training_precision"]


def cuda_available() -> bool:
    return torch.cuda.is_available()


def resolve_device(name: str) -> torch.device:
    """``auto`` → CUDA when available, else CPU; ``cpu`` and ``cuda`` as named (``cuda`` needs a GPU)."""
    if name == "auto":
        return torch.device("cuda" if cuda_available() else "cpu")
    if name == "cuda" and not cuda_available():
        raise ValueError("training.device is cuda but torch sees no CUDA device")
    return torch.device(name)


@contextlib.contextmanager
def training_precision(device: torch.device, precision: str) -> Iterator[None]:
    """The arithmetic of a training forward pass: as is (``fp32``) or autocast to bfloat16 (``bf16``)."""
    if precision == "fp32":
        yield
        return
    with torch.autocast(device_type=device.type, dtype=torch.bfloat16):
        yield
