"""Only delivered updates are trained; their arrival does not depend on training."""

from __future__ import annotations

from fleetsim.core.rounds import round_number
from fleetsim.train.executors import Executor


class SpyExecutor(Executor):
    def __init__(self, inner: Executor):
        self.inner = inner
        self.trained: list[tuple[int, int]] = []

    def run(self, plans, states, work):
        self.trained.extend((round_number(p.round_idx), p.device_id) for p in plans)  # as the tables number it
        return self.inner.run(plans, states, work)


def test_lost_updates_are_never_trained(write_scenario, run):
    spies: list[SpyExecutor] = []

    def wrap(inner: Executor) -> Executor:
        spies.append(SpyExecutor(inner))
        return spies[-1]

    scenario = write_scenario({"rounds": {"deadline_s": 2.0}, "stop": {"max_rounds": 2}})
    _, frames = run(scenario, wrap_executor=wrap)
    updates = frames["updates"]
    delivered = {(r.round, r.device_id) for r in updates.itertuples() if r.outcome == "delivered"}
    lost = {(r.round, r.device_id) for r in updates.itertuples() if r.outcome != "delivered"}
    assert lost, "the scenario must lose some updates"
    assert set(spies[0].trained) == delivered
    assert not (set(spies[0].trained) & lost)
