"""The cost model's ranking: bytes per token from each memory over its bandwidth."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.core.planning.moe_helpers import h200, write_moe
from xgen_jupyter.core.hardware.types import GPUInfo
from xgen_jupyter.core.models.inspect import inspect_model
from xgen_jupyter.core.planning import experts
from xgen_jupyter.core.planning.context import GiB
from xgen_jupyter.core.planning.costmodel import (
    DEFAULT_GPU_BANDWIDTH,
    Placement,
    gpu_bandwidth,
    predict,
    token_bytes,
)

KW = dict(n_ctx=4096, n_ubatch=512, n_outputs=1, per_seq_attention=True, flash_attn=True, head_first=True, device="cuda")


@pytest.fixture(scope="module")
def moe(tmp_path_factory):
    return inspect_model(str(write_moe(tmp_path_factory.mktemp("moe") / "cost-moe.gguf")))


def test_bandwidth_table_by_card():
    bw = {n: gpu_bandwidth(GPUInfo(0, n, "nvidia", 80 * GiB), 50e9) for n in
          ("NVIDIA H200", "NVIDIA H100 80GB HBM3", "AMD Instinct MI300X", "Radeon RX 7900 XTX", "Some New Card")}  # fmt: skip
    assert bw["NVIDIA H200"] == 4.8e12 and bw["NVIDIA H100 80GB HBM3"] == 3.35e12
    assert bw["AMD Instinct MI300X"] > bw["NVIDIA H200"] > bw["Radeon RX 7900 XTX"]
    assert bw["Some New Card"] == DEFAULT_GPU_BANDWIDTH
    igpu = GPUInfo(0, "Mystery iGPU", "amd", 32 * GiB, integrated=True)
    assert gpu_bandwidth(igpu, 90e9) == 90e9  # an unknown integrated GPU reads the host's memory
    strix = GPUInfo(0, "AMD Radeon 8060S Graphics", "amd", 96 * GiB, arch="gfx1151", integrated=True)
    assert gpu_bandwidth(strix, 90e9) == 0.256e12


def test_only_the_active_experts_are_read(moe):
    n = moe.n_layer
    g_all, c_all, res_all, _ = token_bytes(moe, Placement(n + 1, 0), 4096)
    g_exp, c_exp, res_exp, _ = token_bytes(moe, Placement(n + 1, n), 4096)
    assert c_all == 0 and res_all == 0
    active = sum(moe.layer_expert_bytes) * moe.expert_used_count // moe.expert_count
    assert c_exp == pytest.approx(active, rel=1e-6)  # 2 of 16 experts of every block, from host RAM
    assert res_exp == sum(moe.layer_expert_bytes)  # ... while all of them live there
    assert g_all - g_exp == pytest.approx(active, rel=1e-6)


def test_experts_rank_above_whole_layers_for_the_same_memory(moe):
    """Freeing about the same GPU memory, expert offload reads far fewer bytes from the CPU per token."""
    gpu = h200(10 * GiB)
    n = moe.n_layer
    ex = experts.estimate(moe, n_gpu_layers=-1, n_cpu_moe=4, **KW).gpu_total
    layers = next(g for g in range(n, -1, -1) if experts.estimate(moe, n_gpu_layers=g, **KW).gpu_total <= ex)
    fast = predict(moe, Placement(n + 1, 4), n_ctx=4096, gpu=gpu, host_bandwidth=50e9)
    slow = predict(moe, Placement(layers, 0), n_ctx=4096, gpu=gpu, host_bandwidth=50e9)
    assert fast.decode_tps > slow.decode_tps
    assert fast.cpu_read < slow.cpu_read


def test_more_on_the_cpu_is_slower_and_faster_cards_are_faster(moe):
    n = moe.n_layer
    speeds = [predict(moe, Placement(n + 1, k), n_ctx=4096, gpu=h200(GiB), host_bandwidth=50e9).decode_tps
              for k in range(n + 1)]  # fmt: skip
    assert speeds == sorted(speeds, reverse=True) and speeds[0] > speeds[-1]
    slow_card = replace(h200(GiB), name="Radeon RX 7900 XTX")
    assert predict(moe, Placement(n + 1), n_ctx=4096, gpu=h200(GiB), host_bandwidth=50e9).decode_tps > predict(
        moe, Placement(n + 1), n_ctx=4096, gpu=slow_card, host_bandwidth=50e9
    ).decode_tps
    # A faster host narrows the gap of CPU-side experts.
    assert predict(moe, Placement(n + 1, n), n_ctx=4096, gpu=h200(GiB), host_bandwidth=200e9).decode_tps > predict(
        moe, Placement(n + 1, n), n_ctx=4096, gpu=h200(GiB), host_bandwidth=20e9
    ).decode_tps
