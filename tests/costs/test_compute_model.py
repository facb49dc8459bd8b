"""The shape-aware compute model: exact op counts on tiny hand-built work, the time formula on hand-picked
figures (and today's formula, exactly, for profiles without a bandwidth), counts carried through the cost
model, and the calibration fit on made-up measurements."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import FIXTURE_PROFILES

from fleetsim.core.updates import Conditions, TrainConfig, UpdatePlan
from fleetsim.costs.calibration import Sample, fit_compute
from fleetsim.costs.cost_model import CostModel
from fleetsim.costs.counting import StepCost, count_step
from fleetsim.costs.op_counter import RANDOM_NUMBER_BYTES, OpCounter
from fleetsim.costs.timing import compute_s, phase_times
from fleetsim.spec.profiles import load_profile

F32 = 4  # bytes


def test_op_counter_counts_every_call_and_the_bytes_every_data_moving_op_reads_and_writes():
    x, w = torch.ones(4, 3), torch.ones(3, 2)
    with OpCounter() as ops:
        y = (x * 2.0).relu()  # mul, relu: 12 floats in, 12 out, each
        (y @ w).view(8)  # mm: 12 + 6 floats in, 8 out; view: no data moved
    assert ops.kernel_calls == 4
    assert ops.matmul_bytes == (12 + 6 + 8) * F32
    assert ops.memory_bytes == 2 * (12 + 12) * F32 + ops.matmul_bytes


def test_random_numbers_count_as_compute_in_bytes_and_allocations_move_nothing():
    with OpCounter() as ops:
        torch.empty(10).bernoulli_(0.5)  # empty: allocation only; bernoulli_: 10 floats read and written
    assert ops.kernel_calls == 2
    assert ops.memory_bytes == 2 * 10 * F32 + 10 * RANDOM_NUMBER_BYTES


def test_op_counter_sees_backward_and_counts_meta_tensors_like_real_ones():
    counts = []
    for device in ("cpu", "meta"):
        x = torch.ones(4, 3, device=device, requires_grad=True)
        with OpCounter() as ops:
            ((x * 2.0).relu() @ torch.ones(3, 2, device=device)).sum().backward()
        counts.append((ops.kernel_calls, ops.memory_bytes))
    forward_only = 4 * 2 * 12 * F32  # mul and relu, as above
    assert counts[0] == counts[1]
    assert counts[0][0] > 5 and counts[0][1] > forward_only, "backward ops are counted too"


class _Tiny(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.nn.Module:
        out = torch.nn.Module()
        out.loss = torch.relu(self.lin(x)).sum()  # type: ignore[assignment]
        return out


def test_count_step_reports_the_same_work_on_meta_as_on_real_tensors():
    real = count_step(_Tiny(), {"x": torch.ones(5, 8)})
    with torch.device("meta"):
        meta_model = _Tiny()
    meta = count_step(meta_model, {"x": torch.ones(5, 8, device="meta")})
    assert real == meta
    assert real.flops == 2 * 2 * 5 * 8 * 8, "forward and weight gradient (the input needs no gradient)"
    assert real.memory_bytes > 0 and real.kernel_calls > 0


def _profile(**figures: float):
    det = load_profile(FIXTURE_PROFILES / "det_slow.yaml")  # 1e10 FLOP/s
    sources = {**det.sources, **dict.fromkeys(figures, "test")}
    return det.model_copy(update={**figures, "sources": sources})


def test_profile_without_bandwidth_times_flops_alone_exactly():
    slow = load_profile(FIXTURE_PROFILES / "det_slow.yaml")
    assert slow.memory_bytes_per_s is None and slow.kernel_overhead_s == 0.0
    cond = Conditions(4.0, 2.0, 1.7, None)
    times = phase_times(
        slow, cond, flops=3.3e10, download_bytes=1, upload_bytes=1, memory_bytes=7e9, kernel_calls=12345
    )
    assert times.compute_s == 3.3e10 / slow.train_flops_per_s * 1.7  # bit for bit today's formula
    assert compute_s(slow, flops=3.3e10) == 3.3e10 / slow.train_flops_per_s


def test_additive_roofline_on_hand_picked_figures():
    device = _profile(memory_bytes_per_s=1e9, kernel_overhead_s=1e-5)
    seconds = compute_s(device, flops=2e10, memory_bytes=3e9, kernel_calls=1000)
    assert seconds == pytest.approx(2.0 + 3.0 + 0.01, rel=1e-12)
    times = phase_times(
        device,
        Conditions(4.0, 2.0, 2.0, None),
        flops=2e10,
        download_bytes=0,
        upload_bytes=0,
        memory_bytes=3e9,
        kernel_calls=1000,
    )
    assert times.compute_s == pytest.approx(2 * 5.01, rel=1e-12)


class _WorkCounter:
    """A step with n blocks: (n + 1) GFLOP, n · 100 MB of traffic, 10 + 50 n calls."""

    n_blocks = 6
    frozen_bytes = 10**6
    trainable_bytes = 10**4

    def identity(self) -> dict[str, object]:
        return {"kind": "work-stub"}

    def count(self, batch_size: int, seq_len: int, n_active: int, trainable_depth: int | None = None) -> StepCost:
        return StepCost((n_active + 1) * 10**9, n_active * 10**6, n_active * 10**8, 10 + 50 * n_active)

    def describe(self) -> dict[str, object]:
        return {"proxy": None}


def test_update_cost_sums_traffic_and_calls_over_the_steps_run():
    cm = CostModel(_WorkCounter(), 6)  # type: ignore[arg-type]
    assert cm.step(1, 1, 3) == StepCost(4 * 10**9, 3 * 10**6, 3 * 10**8, 160)
    mask = np.array([[True] * 6, [True, False] * 3, [False] * 6])
    cost = cm.update(UpdatePlan(0, 0, TrainConfig(3, 1, 1, 0.1), 0, np.arange(4), mask))
    assert (cost.flops, cost.memory_bytes, cost.kernel_calls) == ((7 + 4 + 1) * 10**9, 9 * 10**8, 3 * 10 + 50 * 9)
    mean = cm.mean_step(1, 1, 3.5)
    assert (mean.flops, mean.memory_bytes, mean.kernel_calls) == (4.5e9, 3.5e8, 185.0)


def test_fit_rates_each_kind_of_work_by_its_profiled_time():
    flops_per_s, bytes_per_s, per_call_s = 2e11, 2e10, 2e-5
    work = [(4e10, 2e9, 5e8, 1200), (2e10, 1e9, 2e8, 1200), (1e11, 3e9, 1e9, 7000)]  # FLOPs, bytes, matmul's, calls
    samples = [
        Sample(
            str(i),
            f,
            b,
            c,
            step_s=f / flops_per_s + b / bytes_per_s + c * per_call_s,
            matmul_s=f / flops_per_s + mm / bytes_per_s,
            memory_s=(b - mm) / bytes_per_s,
            matmul_bytes=mm,
        )
        for i, (f, b, mm, c) in enumerate(work)
    ]
    fit = fit_compute(samples, per_call_s)
    assert fit.train_flops_per_s == pytest.approx(flops_per_s, rel=1e-12)
    assert fit.memory_bytes_per_s == pytest.approx(bytes_per_s, rel=1e-12)
    assert fit.kernel_overhead_s == per_call_s
    assert max(map(abs, fit.relative_errors(samples))) < 1e-9
    # Pooled: Σ work / Σ time, so the 0.5 s step weighs five times the 0.1 s one.
    two = [Sample("a", 1e10, 0, 0, 0.1, 0.1, 0.0), Sample("b", 1e11, 0, 0, 0.5, 0.5, 0.0)]
    assert fit_compute(two).train_flops_per_s == pytest.approx(1.1e11 / 0.6)
    # Matrix products' traffic never takes more than half their time (tiny steps: weights in cache).
    cached = fit_compute([Sample("", 1e9, 2e9, 0, 0.25, 0.1, 0.1, matmul_bytes=1e9)])  # 1e10 B/s: 0.1 s of traffic
    assert cached.memory_bytes_per_s == pytest.approx(1e10) and cached.train_flops_per_s == pytest.approx(1e9 / 0.05)


def test_fit_takes_shares_from_the_profiled_split_and_the_scale_from_the_unprofiled_steps():
    # Profiling lengthened both steps by 10%; the overhead per call (1e-5 s, measured apart) is kept.
    per_call_s = 1e-5
    true = [(2e10, 1e9, 1000), (6e10, 1e9, 3000)]  # FLOPs, non-matmul bytes, calls at 1e11 FLOP/s, 1e10 B/s
    samples = [
        Sample("", f, b, c, f / 1e11 + b / 1e10 + c * per_call_s, 1.1 * f / 1e11, 1.1 * b / 1e10) for f, b, c in true
    ]
    fit = fit_compute(samples, per_call_s)
    assert fit.train_flops_per_s == pytest.approx(1e11) and fit.memory_bytes_per_s == pytest.approx(1e10)
    assert fit.kernel_overhead_s == per_call_s
    assert max(map(abs, fit.relative_errors(samples))) < 1e-9


def test_fit_without_traffic_leaves_bandwidth_unset_and_refuses_steps_without_matrix_products():
    fit = fit_compute([Sample("", 1e10, 0.0, 100, 0.1, 0.1, 0.0)])
    assert fit.memory_bytes_per_s is None and fit.kernel_overhead_s == 0.0
    assert fit.train_flops_per_s == pytest.approx(1e11)
    with pytest.raises(ValueError, match="no matrix products"):
        fit_compute([Sample("", 0.0, 1e9, 100, 0.1, 0.0, 0.1)])


def test_dispatch_overhead_is_microseconds_per_operation():
    from fleetsim.costs.op_profile import dispatch_overhead_s

    assert 1e-7 < dispatch_overhead_s(chain_length=20, repeats=3) < 1e-3
