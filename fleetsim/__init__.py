"""fleetsim: heterogeneous device fleets doing real federated LoRA fine-tuning, in simulated time."""

from __future__ import annotations

__version__ = "0.1.0"

from fleetsim.io.runs import Run, Runs, load_run, load_runs

__all__ = ["Run", "Runs", "__version__", "load_run", "load_runs"]
