"""What a run's simulation is built from, besides the model and data: the scenario's base training
configuration and the cost model that times and sizes every update."""

from __future__ import annotations

from fleetsim.core.updates import TrainConfig
from fleetsim.costs.cost_model import CostModel
from fleetsim.costs.model_counter import ModelCounter
from fleetsim.spec.scenario import Scenario
from fleetsim.train import assets
from fleetsim.train.data import Task
from fleetsim.train.models import ModelBundle

__all__ = ["base_config", "cost_model_for"]


def base_config(sc: Scenario) -> TrainConfig:
    """The scenario's training configuration (what every device gets before a strategy changes it)."""
    opt = sc.training.optimizer
    return TrainConfig(
        local_steps=sc.training.local_steps,
        batch_size=sc.training.batch_size,
        seq_len=sc.training.seq_len,
        lr=opt.lr,
        optimizer=opt.name,
        weight_decay=opt.weight_decay,
    )


def cost_model_for(sc: Scenario, bundle: ModelBundle, task: Task, model_key: str) -> CostModel:
    """The cost model of the run: counted on the trained model itself, or on the scenario's ``cost_model``
    architecture built on the meta device (its language-model head for ``task: causal_lm``); counts are
    cached on disk."""
    cache = assets.cache_dir() / "costs"
    if sc.cost_model is None:
        counter = ModelCounter(bundle, task.train, model_key)
        return CostModel(counter, bundle.num_blocks, bundle.tensor_bytes, cache_dir=cache)
    from fleetsim.costs.proxies import MetaCounter

    lora = sc.model.lora
    arch, dtype = sc.cost_model.arch, sc.cost_model.weight_dtype
    if sc.language_model:
        proxy = MetaCounter(arch, dtype, task.num_labels, lora.r, lora.alpha, "causal_lm")
    else:
        proxy = MetaCounter(arch, dtype, task.num_labels, lora.r, lora.alpha)
    return CostModel(proxy, bundle.num_blocks, bundle.tensor_bytes, cache_dir=cache)
