"""Personalized transformer layer sharing (PTLS): some blocks' LoRA is shared, the rest stays on devices.

DropPEFT's third component ([S] in the reconstruction, §1.2): the LoRA tensors of *shared* blocks are
aggregated by the server; those of *personal* blocks (and the head) never leave the device and carry over
between its rounds. Following FedPer / LG-FedAvg intuition shallow blocks are shared and deep ones kept
personal (how many, and whether the head too, are options of the droppeft strategy). The split is either
fixed (``shared_blocks`` = K: blocks 0..K−1) or chosen once, after ``choose_after_rounds`` rounds, by how
much clients' updates disagree per block: the ``personal_blocks`` blocks whose client updates have the
lowest mean cosine similarity to their average become personal.

Personal tensors live on disk, one small safetensors file per device that has trained
(:class:`PersonalStore`), never as full models in RAM.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from fleetsim.core.state import StateDict
from fleetsim.core.updates import UpdateResult

__all__ = ["PersonalStore", "block_disagreement", "personal_names"]


class PersonalStore:
    """Per-device personal tensors on disk (``<dir>/<device>.safetensors``); nothing is cached in RAM."""

    def __init__(self, directory: Path | None = None):
        self._owned = directory is None
        self.directory = Path(tempfile.mkdtemp(prefix="fleetsim-personal-")) if directory is None else directory
        self.directory.mkdir(parents=True, exist_ok=True)

    def _path(self, device_id: int) -> Path:
        return self.directory / f"{device_id}.safetensors"

    def put(self, device_id: int, tensors: dict[str, torch.Tensor]) -> None:
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(self._path(device_id)))

    def get(self, device_id: int) -> dict[str, torch.Tensor] | None:
        path = self._path(device_id)
        return load_file(str(path)) if path.is_file() else None

    def devices(self) -> list[int]:
        return sorted(int(p.stem) for p in self.directory.glob("*.safetensors"))

    def state_dict(self) -> StateDict:
        """Device id (as text) → that device's personal tensors."""
        return {str(d): self.get(d) for d in self.devices()}

    def load_state_dict(self, state: StateDict) -> None:
        """Replace the store's contents with ``state`` (as written by :meth:`state_dict`)."""
        for path in self.directory.glob("*.safetensors"):
            path.unlink()
        for device, tensors in state.items():
            self.put(int(device), tensors)

    def close(self) -> None:
        if self._owned:
            shutil.rmtree(self.directory, ignore_errors=True)


def personal_names(block_of: dict[str, int | None], personal_blocks: set[int], head_personal: bool) -> frozenset[str]:
    """Names of the tensors that stay on the device."""
    return frozenset(
        name
        for name, block in block_of.items()
        if (block is None and head_personal) or (block is not None and block in personal_blocks)
    )


def block_disagreement(
    global_state: dict[str, torch.Tensor],
    results: Sequence[UpdateResult],
    block_of: dict[str, int | None],
    n_blocks: int,
) -> np.ndarray:
    """Per block, 1 − mean cosine similarity between each client's update and the clients' mean update.

    Higher means clients pull that block's LoRA in more different directions (more client-specific).
    """
    out = np.zeros(n_blocks)
    for block in range(n_blocks):
        names = [n for n, b in block_of.items() if b == block]
        deltas = [torch.cat([(r.state[n] - global_state[n]).flatten() for n in names]) for r in results]
        if len(deltas) < 2:
            continue
        mean = torch.stack(deltas).mean(0)
        sims = [float(torch.nn.functional.cosine_similarity(d, mean, dim=0)) for d in deltas]
        out[block] = 1.0 - float(np.mean(sims))
    return out
