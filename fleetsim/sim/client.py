"""One client's update as a SimPy process: download ▸ compute ▸ upload, or lost on the way.

Durations come from the one time model (:func:`fleetsim.costs.timing.phase_times`). The update is lost —
``offline`` (its device's online period ends, an outage takes it or its battery runs low while it works),
``failure`` (at a uniform point of its planned time), ``oom`` (peak memory above usable memory, when training
would start), or ended by the server —
``deadline``, or ``overcommitted`` (the round already has its first K updates) — at the earliest of those
moments, and recorded with its reason and phase.
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

__all__ = ["Watch", "client_process", "planned_loss"]

PHASES = ("download", "compute", "upload")
LogEvent = Callable[[float, int, int | None, str, str], None]  # (time_s, round, device, kind, detail)


def planned_loss(
    device: Device,
    offline_at_s: float,
    cost: UpdateCost,
    cond: Conditions,
    start_s: float,
    durations: tuple[float, ...],
) -> tuple[float, Outcome]:
    """The earliest moment the update will be lost, and why (``inf``, delivered, if it will not be)."""
    stop_at, reason = math.inf, Outcome.DELIVERED
    if offline_at_s < stop_at:
        stop_at, reason = offline_at_s, Outcome.OFFLINE
    if cond.failure_fraction is not None:
        fail_at = start_s + cond.failure_fraction * sum(durations)
        if fail_at < stop_at:
            stop_at, reason = fail_at, Outcome.FAILURE
    if cost.peak_memory_bytes > device.profile.usable_memory_bytes:
        oom_at = start_s + durations[0]  # training starts, and cannot allocate
        if oom_at <= stop_at:
            stop_at, reason = oom_at, Outcome.OOM
    return stop_at, reason


class Watch(Protocol):
    """What the fleet says about a device while it works (:class:`~fleetsim.world.fleet.Fleet`)."""

    def leaves_at_s(self, device: Device, start_s: float, load: Load) -> tuple[float, str]: ...

    def spend(self, device: Device, start_s: float, load: Load) -> None: ...


def client_process(
    env: simpy.Environment,
    plan: UpdatePlan,
    device: Device,
    cost: UpdateCost,
    cond: Conditions,
    watch: Watch,
    log: LogEvent,
    records: dict[int, UpdateRecord],
) -> Generator[simpy.Event, object, None]:
    """Run ``plan`` on ``device``; put its :class:`UpdateRecord` into ``records[device.id]``.

    ``watch`` says when and why the device leaves while drawing the update's power (availability, outage,
    battery; recorded as ``offline_cause``) and is told the power it drew; ``log`` records loss events.
    """
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
    durations = times.phases
    powers = (profile.radio_power_w, profile.train_power_w, profile.radio_power_w)
    start_s = env.now
    leaves_at, why_offline = watch.leaves_at_s(device, start_s, list(zip(durations, powers, strict=True)))
    stop_at, reason = planned_loss(device, leaves_at, cost, cond, start_s, durations)
    done = dict.fromkeys(PHASES, 0.0)
    outcome, failed_phase = Outcome.DELIVERED, None
    phase, phase_start = PHASES[0], start_s
    try:
        for phase, duration in zip(PHASES, durations, strict=True):
            phase_start = env.now
            if env.now + duration > stop_at:
                yield env.timeout(stop_at - env.now)
                done[phase] = env.now - phase_start
                outcome, failed_phase = reason, phase
                log(env.now, plan.round_idx, device.id, str(reason), phase)
                break
            yield env.timeout(duration)
            done[phase] = duration
    except simpy.Interrupt as stop:  # the server ends the update: its cause is the outcome (deadline, ...)
        done[phase] = env.now - phase_start
        outcome, failed_phase = Outcome(str(stop.cause)), phase
        log(env.now, plan.round_idx, device.id, str(outcome), phase)
    watch.spend(device, start_s, [(done[p], w) for p, w in zip(PHASES, powers, strict=True)])
    dl_s, cp_s, ul_s = durations
    records[device.id] = UpdateRecord(
        round_idx=plan.round_idx,
        device_id=device.id,
        profile=device.profile_id,
        tier=device.tier,
        outcome=outcome,
        failed_phase=failed_phase,
        offline_cause=why_offline if outcome is Outcome.OFFLINE else None,
        start_s=start_s,
        end_s=env.now,
        download_s=dl_s,
        compute_s=cp_s,
        upload_s=ul_s,
        downlink_mbps=cond.downlink_mbps,
        uplink_mbps=cond.uplink_mbps,
        straggler_factor=cond.straggler_factor,
        flops=cost.flops,
        peak_memory_bytes=cost.peak_memory_bytes,
        usable_memory_bytes=profile.usable_memory_bytes,
        active_blocks_mean=float(plan.mask.sum()) / plan.mask.shape[0],
        bytes_down=_partial_bytes(cost.download_bytes, done["download"], dl_s),
        bytes_up=_partial_bytes(cost.upload_bytes, done["upload"], ul_s),
        energy_j=sum(done[p] * w for p, w in zip(PHASES, powers, strict=True)),
    )


def _partial_bytes(total: int, done_s: float, planned_s: float) -> int:
    if planned_s <= 0 or done_s >= planned_s:
        return total if done_s >= planned_s else 0
    return int(total * done_s / planned_s)
