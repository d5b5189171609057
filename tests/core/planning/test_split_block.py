"""A block whose experts are split between GPU and CPU (``--n-cpu-moe K -ot blk.K...``): the cost model
charges its prompt cost, and the ranking keeps whole blocks unless the split gains real decode speed.

Replays issue 13's H200 cells on the benchmark's Qwen3-30B-A3B shape (a header-only GGUF of the
same tensors, moe_helpers.write_a3b_header): free memory and host bandwidth as NVML and xgen
measured them in run 4 (benchmarks/results/plans/run4-plans.json), NVML per process of the hand
plans in runs 2-4 (benchmarks/results/plans.md).
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.core.planning.moe_helpers import CPU, h200, installs, write_a3b_header, write_moe
from xgen_jupyter.core.hardware.types import HardwareReport
from xgen_jupyter.core.models.inspect import inspect_model
from xgen_jupyter.core.planning import experts
from xgen_jupyter.core.planning.context import PlanInputs
from xgen_jupyter.core.planning.costmodel import Placement, Speed, predict
from xgen_jupyter.core.planning.margin import Margin
from xgen_jupyter.core.planning.planner import plan
from xgen_jupyter.core.planning.request import parse_request
from xgen_jupyter.core.planning.strategies import DECODE_TIE, Candidate, ranked

MiB = 1024**2
HOST_BW = 77.4e9  # xgen's cached host bandwidth in run 4 (16 threads copying)


@pytest.fixture(scope="module")
def a3b(tmp_path_factory):
    return inspect_model(str(write_a3b_header(tmp_path_factory.mktemp("a3b") / "a3b-shape.gguf")))


def _plan(facts, free_mib: int):  # type: ignore[no-untyped-def]
    req = parse_request({"model": facts.path, "n_ctx": 8192, "n_parallel": 1, "mlock": False})
    hw = HardwareReport("h200", (h200(free_mib * MiB),), CPU)
    return plan(PlanInputs(hw, facts, req, installs(), "m", host_bandwidth=HOST_BW))


def test_the_header_only_shape_is_the_benchmarks_model(a3b):
    assert a3b.n_layer == 48 and a3b.expert_count == 128 and a3b.expert_used_count == 8
    assert a3b.expert_tensor_max == 108 * MiB and a3b.layer_expert_bytes == (324 * MiB,) * 48
    assert a3b.file_size > 17.2e9  # the size make_shapes.py wrote (17.2 GB)


@pytest.mark.parametrize(("free_mib", "k", "nvml_mib"), [(6143, 37, 5926), (12287, 18, 12074)])
def test_busy_card_keeps_whole_blocks_the_best_hand_plan(a3b, free_mib, k, nvml_mib):
    """6 GiB free: run 4 planned `--n-cpu-moe 36` + up/down of block 36 (-ot), 0.92x the prompt speed of
    the hand plan `--n-cpu-moe 37`; now the plan is that hand plan, and its memory matches NVML."""
    p = _plan(a3b, free_mib)
    s = p.settings
    assert s.n_gpu_layers == a3b.n_layer + 1 and s.n_cpu_moe == k and s.override_tensor is None
    assert "--override-tensor" not in p.argv
    planned = p.memory.gpu_total
    assert planned + Margin().for_bytes(planned) <= free_mib * MiB
    assert abs(planned / MiB - nvml_mib) / nvml_mib < 0.02  # same argv as the hand plan, measured


def test_card_with_room_keeps_everything_on_the_gpu(a3b):
    p = _plan(a3b, 24575)
    assert p.settings.n_cpu_moe is None and p.settings.override_tensor is None
    assert p.prediction is not None and p.prediction.strategy == "all-gpu"


def test_split_block_prompts_slower_and_gains_less_than_a_tie(a3b):
    gpu = h200(6143 * MiB)
    n = a3b.n_layer

    def sp(k: int, part: int = 0) -> Speed:
        return predict(a3b, Placement(n + 1, k, True, part), n_ctx=8192, gpu=gpu, host_bandwidth=HOST_BW)

    whole, split = sp(37), sp(36, 2)  # run 4's split keeps one expert tensor more on the GPU
    assert split.cpu_read < whole.cpu_read and split.cpu_weights < whole.cpu_weights
    assert whole.decode_tps < split.decode_tps < whole.decode_tps * (1 + DECODE_TIE)
    assert split.prompt_tps < whole.prompt_tps
    # Its GPU-side tensors earn no prompt credit: one or two of them make no prompt difference.
    assert sp(36, 1).prompt_tps == split.prompt_tps
    # A model without a split block is unchanged: more whole blocks on the CPU, slower prompt.
    assert sp(38).prompt_tps < whole.prompt_tps < sp(36).prompt_tps


def test_split_block_wins_where_it_gains_real_decode(a3b):
    """Nearly all on the GPU, each expert tensor read from host RAM is a large share of a token: the
    split (one tensor more on the GPU) is predicted > DECODE_TIE faster and chosen (with -ot)."""
    p = _plan(a3b, 17408)
    assert p.settings.override_tensor and p.settings.n_cpu_moe
    assert p.prediction is not None and "of block" in p.prediction.flags


def _cand(tiny, decode: float, prompt: float, k: int) -> Candidate:
    est = experts.estimate(tiny, n_ctx=4096, n_gpu_layers=-1, n_cpu_moe=k)
    return Candidate("experts", tiny.n_layer + 1, k, est, Speed(decode, prompt, 0, 0, 0))


def test_ranking_is_decode_first_with_near_ties_to_prompt(tmp_path):
    tiny = inspect_model(str(write_moe(tmp_path / "tiny.gguf")))
    a = _cand(tiny, 100.0, 3000.0, 1)
    b = _cand(tiny, 100.0 * (1 + DECODE_TIE / 2), 2800.0, 2)  # faster decode, within the tie
    c = _cand(tiny, 100.0 * (1 + DECODE_TIE * 2), 1000.0, 3)  # faster decode beyond the tie
    assert ranked([b, a]) == [a, b]
    assert ranked([a, b, c]) == [c, b, a]  # beyond the tie of the fastest, decode orders the rest
    assert ranked([replace(a, speed=replace(a.speed, prompt_tps=2000.0)), b])[0] is b
