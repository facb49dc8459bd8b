"""``fedlora``: vanilla federated LoRA — every device trains all blocks; FedAvg over LoRA and head."""

from __future__ import annotations

from fleetsim.policy.strategies.base import Strategy, register_strategy


@register_strategy
class FedLoRA(Strategy):
    """Uniform selection, the scenario's config for every device, sample-weighted FedAvg."""

    name = "fedlora"
