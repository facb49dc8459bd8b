"""One client's update: download ▸ compute ▸ upload, or lost on the way.

Durations come from the one time model (:func:`fleetsim.costs.timing.phase_times`). Everything about the
update's course is known when it starts (:class:`Attempt`): it is lost — ``offline`` (its device's online
period ends, an outage takes it or its battery runs low while it works), ``failure`` (at a uniform point of
its planned time) or ``oom`` (peak memory above usable memory, when training would start) — at the earliest
of those moments, or delivered when its upload ends. So an update is one SimPy timeout to that moment: a
process (:func:`client_process`) in synchronous rounds, where the server may end it early — ``deadline``,
or ``overcommitted`` (the round already has its first K updates) — and a timeout with a callback
(:func:`start_update`) in asynchronous rounds, where nothing ends it early. Either way it is recorded with
its reason and the phase it was in (a loss at a phase boundary falls in the later phase). When the server's
links are capped, a :class:`Runner` (:class:`~fleetsim.sim.server_link.ServerLink`) runs every update
instead, re-planning an update's course whenever its share of the link changes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator
from typing import Protocol

import simpy

from fleetsim.core.updates import Conditions, Outcome, UpdateCost, UpdatePlan, UpdateRecord
from fleetsim.costs.timing import phase_times
from fleetsim.world.battery import Load
from fleetsim.world.fleet import Device

__all__ = ["Attempt", "Runner", "Watch", "client_process", "planned_loss", "start_update"]

PHASES = ("download", "compute", "upload")
LogEvent = Callable[[float, int, int | None, str, str], None]  # (time_s, round, device, kind, detail)


def planned_loss(
    device: Device, offline_at_s: float, cost: UpdateCost, fail_at_s: float, start_s: float, download_s: float
) -> tuple[float, Outcome]:
    """The earliest moment the update will be lost, and why (``inf``, delivered, if it will not be):
    its device leaves at ``offline_at_s``, it fails at ``fail_at_s``, or training (after the download)
    cannot allocate its peak memory."""
    stop_at, reason = math.inf, Outcome.DELIVERED
    if offline_at_s < stop_at:
        stop_at, reason = offline_at_s, Outcome.OFFLINE
    if fail_at_s < stop_at:
        stop_at, reason = fail_at_s, Outcome.FAILURE
    if cost.peak_memory_bytes > device.profile.usable_memory_bytes:
        oom_at = start_s + download_s  # training starts, and cannot allocate
        if oom_at <= stop_at:
            stop_at, reason = oom_at, Outcome.OOM
    return stop_at, reason


class Watch(Protocol):
    """What the fleet says about a device while it works (:class:`~fleetsim.world.fleet.Fleet`)."""

    def leaves_at_s(self, device: Device, start_s: float, load: Load) -> tuple[float, str]: ...

    def spend(self, device: Device, start_s: float, load: Load) -> None: ...


class Attempt:
    """One update's planned course from ``start_s``: its phase durations, when it ends and how. ``watch``
    says when and why the device leaves while drawing the update's power (availability, outage, battery;
    recorded as ``offline_cause``). A failing update fails at its drawn fraction of the course planned at
    its start (``fail_at_s``); a shared server link (:mod:`.server_link`) may :meth:`replan` the rest."""

    __slots__ = (
        "cond",
        "cost",
        "device",
        "durations",
        "end_s",
        "ends",
        "fail_at_s",
        "latency_s",
        "outcome",
        "plan",
        "powers",
        "sent_bytes",
        "start_s",
        "watch",
        "why",
    )

    def __init__(
        self, plan: UpdatePlan, device: Device, cost: UpdateCost, cond: Conditions, watch: Watch, start_s: float
    ):
        profile = device.profile
        times = phase_times(
            profile,
            cond,
            flops=cost.flops,
            download_bytes=cost.download_bytes,
            upload_bytes=cost.upload_bytes,
            memory_bytes=cost.memory_bytes,
            kernel_calls=cost.kernel_calls,
        )
        self.plan, self.device, self.cost, self.cond, self.start_s = plan, device, cost, cond, start_s
        self.watch, self.latency_s = watch, times.latency_s
        self.sent_bytes: tuple[int, int] | None = None  # (down, up) as counted by a shared link, if one ran it
        self.powers = (profile.radio_power_w, profile.train_power_w, profile.radio_power_w)
        self.fail_at_s = math.inf
        if cond.failure_fraction is not None:
            self.fail_at_s = start_s + cond.failure_fraction * sum(times.phases)
        self.replan(times.phases)

    def replan(self, durations: tuple[float, float, float]) -> None:
        """Plan the course with phase durations ``durations`` (download, compute, upload): when each phase
        ends, when and how the update ends."""
        start_s = self.start_s
        self.durations = durations
        dl_end = start_s + durations[0]
        cp_end = dl_end + durations[1]
        self.ends = (dl_end, cp_end, cp_end + durations[2])  # when each phase would end
        load = list(zip(durations, self.powers, strict=True))
        leaves_at, self.why = self.watch.leaves_at_s(self.device, start_s, load)
        stop_at, reason = planned_loss(self.device, leaves_at, self.cost, self.fail_at_s, start_s, durations[0])
        lost = stop_at < self.ends[2]
        self.end_s = stop_at if lost else self.ends[2]
        self.outcome = reason if lost else Outcome.DELIVERED

    def finish(self, now_s: float, outcome: Outcome, log: LogEvent, round_idx: int | None = None) -> UpdateRecord:
        """The record of the update ended at ``now_s`` with ``outcome`` in ``round_idx`` (default: the round
        it started in); its energy drawn (its watch is told), its loss logged."""
        round_idx = self.plan.round_idx if round_idx is None else round_idx
        done: tuple[float, ...] = self.durations
        failed_phase = None
        if outcome is not Outcome.DELIVERED:
            starts = (self.start_s, *self.ends[:2])
            done = tuple(min(max(now_s - s, 0.0), d) for s, d in zip(starts, self.durations, strict=True))
            failed_phase = PHASES[next((i for i, end in enumerate(self.ends) if end > now_s), len(PHASES) - 1)]
            log(now_s, round_idx, self.device.id, str(outcome), failed_phase)
        self.watch.spend(self.device, self.start_s, list(zip(done, self.powers, strict=True)))
        cost, cond, profile, plan = self.cost, self.cond, self.device.profile, self.plan
        dl_s, cp_s, ul_s = self.durations
        sent = self.sent_bytes or (  # a cut transfer: its share of the phase's time, at a constant speed
            _partial_bytes(cost.download_bytes, done[0], dl_s),
            _partial_bytes(cost.upload_bytes, done[2], ul_s),
        )
        return UpdateRecord(
            round_idx=round_idx,
            device_id=self.device.id,
            profile=self.device.profile_id,
            tier=profile.tier,
            outcome=outcome,
            failed_phase=failed_phase,
            offline_cause=self.why if outcome is Outcome.OFFLINE else None,
            start_s=self.start_s,
            end_s=now_s,
            download_s=dl_s,
            compute_s=cp_s,
            upload_s=ul_s,
            downlink_mbps=cond.downlink_mbps,
            uplink_mbps=cond.uplink_mbps,
            straggler_factor=cond.straggler_factor,
            flops=cost.flops,
            peak_memory_bytes=cost.peak_memory_bytes,
            usable_memory_bytes=profile.usable_memory_bytes,
            active_blocks_mean=plan.active_blocks_mean,
            bytes_down=sent[0],
            bytes_up=sent[1],
            energy_j=sum(d * w for d, w in zip(done, self.powers, strict=True)),
        )


class Runner(Protocol):
    """Runs attempts whose course others change (:class:`~fleetsim.sim.server_link.ServerLink`)."""

    def start(self, attempt: Attempt, on_end: Callable[[Attempt], None]) -> int: ...

    def cancel(self, key: int) -> None: ...


def client_process(
    env: simpy.Environment,
    attempt: Attempt,
    log: LogEvent,
    records: dict[int, UpdateRecord],
    runner: Runner | None = None,
) -> Generator[simpy.Event, object, None]:
    """Run ``attempt`` (started now) as a process the server may interrupt (its cause is the outcome:
    deadline, overcommitted); put its :class:`UpdateRecord` into ``records[device id]``.

    ``log`` records loss events. With a ``runner``
    (a shared server link) the runner runs the attempt and says when it ended.
    """
    key = None
    try:
        if runner is None:
            yield env.timeout(attempt.end_s - env.now)
        else:
            ended = env.event()
            key = runner.start(attempt, lambda _: _trigger(ended))
            yield ended
        outcome = attempt.outcome
    except simpy.Interrupt as stop:
        outcome = Outcome(str(stop.cause))
        if runner is not None and key is not None:
            runner.cancel(key)
    records[attempt.device.id] = attempt.finish(env.now, outcome, log)


def start_update(
    env: simpy.Environment, attempt: Attempt, on_end: Callable[[Attempt], None], runner: Runner | None = None
) -> None:
    """Run ``attempt`` (started now) as one timeout that nothing ends early (or on ``runner``, a shared
    server link); ``on_end`` gets it when it arrives or is lost (to :meth:`Attempt.finish` it with its
    outcome and round)."""
    if runner is not None:
        runner.start(attempt, on_end)
        return
    env.timeout(attempt.end_s - env.now).callbacks.append(lambda _: on_end(attempt))


def _trigger(event: simpy.Event) -> None:
    event.succeed()


def _partial_bytes(total: int, done_s: float, planned_s: float) -> int:
    if planned_s <= 0 or done_s >= planned_s:
        return total if done_s >= planned_s else 0
    return int(total * done_s / planned_s)
