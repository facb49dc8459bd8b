"""End to end with the real model: simulated times on a tiny deterministic fleet equal hand-computed values
from the counted FLOPs and the bytes of the real LoRA tensors, exactly; real peak memory decides oom."""

from __future__ import annotations

import math

# LoRA r=4 on query and value of 6 MiniLM blocks: A (4x384) + B (384x4) per module; head 8x384 + 8.
LORA_PARAMS = 6 * 2 * (4 * 384 + 384 * 4)
HEAD_PARAMS = 8 * 384 + 8
TRANSFER_BYTES = (LORA_PARAMS + HEAD_PARAMS) * 4  # fp32


def _expected_duration(flops: int, flops_per_s: float, down_mbps: float, up_mbps: float, latency_s: float):
    download_s = TRANSFER_BYTES * 8 / (down_mbps * 1e6) + latency_s
    compute_s = flops / flops_per_s
    upload_s = TRANSFER_BYTES * 8 / (up_mbps * 1e6) + latency_s
    return download_s, compute_s, upload_s


def test_round_times_are_flops_over_throughput_plus_bytes_over_bandwidth(write_scenario, run):
    result, frames = run(write_scenario())
    updates, rounds = frames["updates"], frames["rounds"]
    assert (updates.outcome == "delivered").all()
    assert (updates.bytes_down == TRANSFER_BYTES).all() and (updates.bytes_up == TRANSFER_BYTES).all()
    flops = int(updates.flops.iloc[0])
    assert flops == result.summary["cost_model"]["flops_per_step_full_depth"] * 2  # 2 local steps, counted once per key

    fast = _expected_duration(flops, 1e11, 10.0, 5.0, 0.0)
    slow = _expected_duration(flops, 1e10, 2.0, 1.0, 0.5)
    for _, row in updates.iterrows():
        expected = fast if row.profile == "det_fast" else slow
        assert (row.download_s, row.compute_s, row.upload_s) == expected
        # SimPy adds the phases one after another: ((start + download) + compute) + upload.
        assert row.end_s == ((row.start_s + expected[0]) + expected[1]) + expected[2]
    round_s = slow[0] + slow[1] + slow[2]  # the round waits for its slowest device
    assert rounds.start_s.tolist() == [0.0, rounds.end_s.iloc[0]]
    assert rounds.end_s.iloc[0] == 0.0 + slow[0] + slow[1] + slow[2]
    assert rounds.duration_s.tolist() == [round_s, rounds.end_s.iloc[1] - rounds.end_s.iloc[0]]
    assert math.isclose(rounds.end_s.iloc[1], 2 * round_s, rel_tol=1e-15)


def test_update_that_does_not_fit_in_memory_fails_oom_after_download(write_scenario, run):
    scenario = write_scenario(
        {
            "fleet": [{"profile": "det_tiny_memory", "count": 1}, {"profile": "det_fast", "count": 1}],
            "rounds": {"clients_per_round": 2},
            "stop": {"max_rounds": 1},
        }
    )
    _, frames = run(scenario)
    oom = frames["updates"][frames["updates"].profile == "det_tiny_memory"].iloc[0]
    assert oom.outcome == "oom" and oom.failed_phase == "compute" and not oom.trained
    assert oom.end_s - oom.start_s == oom.download_s
    assert oom.peak_memory_bytes > oom.usable_memory_bytes
    assert oom.bytes_up == 0
