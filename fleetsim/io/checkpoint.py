"""Saving nested state (a ``state_dict`` tree) to a folder without pickle, and reading it back exactly.

Leaves that are torch tensors go to ``tensors.safetensors``, numpy arrays to ``arrays.safetensors`` (the
numpy flavour of the same format), and everything else — the tree's shape, numbers, strings, ``None`` and
empty mappings — to ``tree.json``. Keys are the leaf's path joined with ``/``. The folder is written next to
its final place and renamed into it, so a checkpoint is either whole or absent.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.numpy import load_file as load_arrays
from safetensors.numpy import save_file as save_arrays
from safetensors.torch import load_file as load_tensors
from safetensors.torch import save_file as save_tensors

from fleetsim.core.state import StateDict

__all__ = ["load_tree", "save_tree"]

_TENSOR, _ARRAY = "__tensor__", "__array__"


def save_tree(folder: Path, tree: StateDict) -> Path:
    """Write ``tree`` into ``folder`` (which must not exist) atomically; return ``folder``."""
    tensors: dict[str, torch.Tensor] = {}
    arrays: dict[str, np.ndarray] = {}

    def skeleton(node: Any, path: str) -> Any:
        if isinstance(node, dict):
            return {str(k): skeleton(v, f"{path}/{k}" if path else str(k)) for k, v in node.items()}
        if isinstance(node, torch.Tensor):
            tensors[path] = node.detach().contiguous().cpu()
            return {_TENSOR: path}
        if isinstance(node, np.ndarray):
            arrays[path] = np.ascontiguousarray(node)
            return {_ARRAY: path}
        if isinstance(node, np.generic):
            return node.item()
        return node

    shape = skeleton(tree, "")
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_tensors(tensors, str(tmp / "tensors.safetensors"))
    save_arrays(arrays, str(tmp / "arrays.safetensors"))
    (tmp / "tree.json").write_text(json.dumps(shape))
    tmp.rename(folder)
    return folder


def load_tree(folder: Path) -> StateDict:
    """Read a tree written by :func:`save_tree`."""
    tensors = load_tensors(str(folder / "tensors.safetensors"))
    arrays = load_arrays(str(folder / "arrays.safetensors"))

    def rebuild(node: Any) -> Any:
        if isinstance(node, dict):
            if set(node) == {_TENSOR}:
                return tensors[node[_TENSOR]]
            if set(node) == {_ARRAY}:
                return arrays[node[_ARRAY]]
            return {k: rebuild(v) for k, v in node.items()}
        return node

    tree = rebuild(json.loads((folder / "tree.json").read_text()))
    assert isinstance(tree, dict)
    return tree
