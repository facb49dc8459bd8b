"""fleetsim: heterogeneous device fleets doing real federated LoRA fine-tuning, in simulated time."""

from __future__ import annotations

__version__ = "0.1.0"
