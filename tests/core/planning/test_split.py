"""One model over several GPUs: block placement as llama.cpp b11434 does it, per-card bytes, the
split fit, and the planner's choice (hand-computed values in the comments)."""

from __future__ import annotations

import pytest

from tests.core.planning.test_memory import L8B, L70B, llama_shaped
from xgen_jupyter.core.box.devices import claims_for
from xgen_jupyter.core.errors import RequestError
from xgen_jupyter.core.hardware.types import CPUInfo, GPUInfo, HardwareReport
from xgen_jupyter.core.planning import memory
from xgen_jupyter.core.planning.context import PlanInputs
from xgen_jupyter.core.planning.planner import plan
from xgen_jupyter.core.planning.request import parse_request
from xgen_jupyter.core.planning.split import PIPELINE_COPIES, estimate_split, layer_devices
from xgen_jupyter.core.planning.split_fit import fit_split
from xgen_jupyter.core.textreport import render_plan

MiB, GiB = 1024**2, 1024**3


def test_block_counts_as_tensor_split_land_exactly() -> None:
    # 32 blocks + head = 33 offloaded; shares 17,16: block r goes to dev 0 while r/33 < 17/33.
    where = layer_devices(32, 33, [17, 16])
    assert where[:17] == [0] * 17 and where[17:] == [1] * 16
    assert where[32] == 1  # the head is on the last card


def test_placement_by_free_memory_and_partial_offload() -> None:
    # Equal shares: r/33 < 0.5 for r <= 16, so 17 places on dev 0 (blocks 0..16), 16 on dev 1.
    assert layer_devices(32, 33, [79.0, 79.0]).count(0) == 17
    # -ngl 10 (b11434 offloads the head first): first = 33 - 10 = 23, so blocks 0..22 stay on
    # the CPU; r = 0..4 (r/10 < 0.5) on dev 0 = blocks 23..27; blocks 28..31 and the head on dev 1.
    where = layer_devices(32, 10, [1, 1])
    assert where[:23] == [None] * 23
    assert where[23:28] == [0] * 5 and where[28:] == [1] * 5
    # Three cards with a 0 share skip that card.
    assert 1 not in layer_devices(32, 33, [1, 0, 1])


def kw(**over):
    base = dict(n_ctx=8192, n_parallel=1, n_ubatch=512, device="cuda", flash_attn=True, n_outputs=1,
                per_seq_attention=True)  # fmt: skip
    return {**base, **over}


def test_one_card_split_equals_the_single_gpu_estimate() -> None:
    one = estimate_split(L8B, shares=[1.0], **kw())
    single = memory.estimate(L8B, n_gpu_layers=-1, **kw())
    assert one.per_gpu == (single.gpu_total,)
    assert one.estimate.host_total == single.host_total
    assert one.layers == (33,)


def test_layer_split_moves_blocks_and_keeps_totals() -> None:
    s = estimate_split(L8B, shares=[17, 16], mode="layer", **kw())
    single = memory.estimate(L8B, n_gpu_layers=-1, **kw())
    block = L8B.layer_bytes[0]
    kv_layer = 8192 * 8 * 128 * 2 * 2  # cells * kv heads * head dim * (K+V) * f16 = 32 MiB
    out, attn = memory.compute_parts(L8B, 8192, 1, 512, True, 1, True)
    graph = max(out, attn)  # each card reserves the whole graph's peak (measured on two H200s)
    hidden, mask = 512 * 4096 * 4, 512 * 8192 * 2  # f32 hidden state, f16 mask (flash attention)
    pipe = (PIPELINE_COPIES - 1) * (hidden + mask)  # 3 extra input copies on each card...
    first = (PIPELINE_COPIES - 1) * 3 * hidden  # ... and 3 x 3 hidden-state copies on the first
    ovh = memory.DEVICE_OVERHEAD["cuda"]
    assert s.per_gpu[0] == 17 * (block + kv_layer) + graph + pipe + first + ovh
    assert s.per_gpu[1] == 15 * (block + kv_layer) + L8B.output_bytes + graph + pipe + ovh
    e = s.estimate
    assert e.weights_gpu == single.weights_gpu and e.kv_cache == single.kv_cache
    assert e.per_gpu == s.per_gpu and e.gpu_total == sum(s.per_gpu)
    # Two runtimes and two compute buffers: a split costs more than one card would.
    assert e.gpu_total > single.gpu_total + ovh


def test_row_split_spreads_weights_and_keeps_kv_with_blocks() -> None:
    s = estimate_split(L8B, shares=[1, 1], mode="row", **kw())
    layer = estimate_split(L8B, shares=[1, 1], mode="layer", **kw())
    w_total = sum(L8B.layer_bytes) + L8B.output_bytes
    fixed0, fixed1 = s.fixed
    kv0 = 17 * 8192 * 8 * 128 * 4
    assert abs(s.per_gpu[0] - fixed0 - kv0 - w_total / 2) <= 40  # int() per tensor
    # dev 1: blocks 17..31 (15 with KV) and the head
    assert abs(s.per_gpu[1] - fixed1 - (15 * 8192 * 8 * 128 * 4) - w_total / 2) <= 40
    # No pipeline copies in row mode.
    assert sum(s.fixed) < sum(layer.fixed)


def test_tensor_split_cuts_weights_and_kv_and_every_card_runs_the_graph() -> None:
    s = estimate_split(L8B, shares=[3, 1], mode="tensor", **kw())
    w_total = sum(L8B.layer_bytes) + L8B.output_bytes
    kv_total = 32 * 8192 * 8 * 128 * 4
    out, attn = memory.compute_parts(L8B, 8192, 1, 512, True, 1, True)
    fixed = max(out, attn) + memory.DEVICE_OVERHEAD["cuda"] + 820 * MiB  # measured on two H200s
    assert s.fixed == (fixed, fixed)
    assert abs(s.per_gpu[0] - fixed - 0.75 * (w_total + kv_total)) <= 80
    assert abs(s.per_gpu[1] - fixed - 0.25 * (w_total + kv_total)) <= 80


def test_fit_split_70b_on_two_24_gib_cards() -> None:
    budget = 24 * GiB  # 41.9 GiB of weights + 2.5 GiB KV at 8192 + 2 x runtime and compute
    res = fit_split(L70B, budgets=[budget, budget], n_ctx=8192, **{k: v for k, v in kw().items() if k != "n_ctx"})
    assert res.fits and res.n_gpu_layers == 81 and res.n_ctx == 8192
    assert sum(res.tensor_split) == 81
    assert all(p <= budget for p in res.split.per_gpu)
    # Balanced: the two cards differ by less than two blocks' worth.
    assert abs(res.split.per_gpu[0] - res.split.per_gpu[1]) < 2 * (L70B.layer_bytes[0] + 8192 * 8 * 128 * 4)


def test_fit_split_shrinks_context_then_moves_blocks_to_cpu() -> None:
    rest = {k: v for k, v in kw().items() if k != "n_ctx"}
    res = fit_split(L70B, budgets=[23 * GiB, 23 * GiB], n_ctx=131072, **rest)
    assert res.n_gpu_layers == 81 and res.n_ctx < 131072 and "Context reduced" in res.notes[0]
    small = fit_split(L70B, budgets=[12 * GiB, 12 * GiB], n_ctx=8192, ctx_pinned=True, **rest)
    assert 0 < small.n_gpu_layers < 81 and "on the CPU" in small.notes[0]
    assert all(p <= 12 * GiB for p in small.split.per_gpu)
    none = fit_split(L70B, budgets=[100 * MiB, 100 * MiB], n_ctx=8192, **rest)
    assert not none.fits


def test_fit_split_unequal_cards_follow_free_memory() -> None:
    rest = {k: v for k, v in kw().items() if k != "n_ctx"}
    res = fit_split(L70B, budgets=[30 * GiB, 14 * GiB], n_ctx=8192, **rest)
    a, b = res.tensor_split
    assert res.fits and a > 1.6 * b
    assert res.split.per_gpu[0] <= 30 * GiB and res.split.per_gpu[1] <= 14 * GiB


# --- the planner -----------------------------------------------------------------------
CPU = CPUInfo(16, 32, 256 * GiB, 200 * GiB, "test cpu")


def h100(i: int, free_gib: float) -> GPUInfo:
    return GPUInfo(i, "NVIDIA H100 80GB HBM3", "nvidia", 80 * GiB, int(free_gib * GiB), "sm_90", "9.0", "Hopper", False,
                   source="nvml")  # fmt: skip


def xtx(i: int) -> GPUInfo:  # the dual RX 7900 XTX box of shared/devices
    return GPUInfo(i, "Radeon RX 7900 XTX", "amd", 24 * GiB, 23 * GiB, "gfx1100", None, "RDNA", False, source="rocminfo")


def make(facts, gpus, backends=("llama-server-cuda", "llama-server-rocm", "llama-server-vulkan", "llama-server-cpu"),
         flags=frozenset(), **req):  # fmt: skip
    from xgen_jupyter.core.adapters.registry import backend_ids, row
    from xgen_jupyter.core.planning.backend import BackendInstall

    inst = {b: BackendInstall(row(b), b in backends, f"/opt/{b}" if b in backends else None, flags=frozenset(flags))
            for b in backend_ids()}  # fmt: skip
    report = HardwareReport("test", tuple(gpus), CPU, ())
    return plan(PlanInputs(report, facts, parse_request({"model": "default", **req}), inst, "m"))


def test_one_card_that_fits_is_not_split() -> None:
    p = make(L8B, [h100(0, 79), h100(1, 79)])
    assert p.gpus == (0,) and p.settings.split_mode is None and "--split-mode" not in p.argv
    assert "multi-gpu-split" not in {r.rule for r in p.reasons}


def test_busy_cards_get_an_automatic_layer_split() -> None:
    # A shared box: the H100s have 8.14 and 9.16 GiB free (8 and 9 after the 64 MiB + 1% margin);
    # the 8B model with 32768 tokens of context needs about 10 GiB, more than either card.
    p = make(L8B, [h100(0, 8.14), h100(1, 9.16)], n_ctx=32768)
    assert p.backend == "llama-server-cuda"
    assert p.settings.split_mode == "layer" and p.gpus == (1, 0)  # most free first
    assert p.env["CUDA_VISIBLE_DEVICES"] == "1,0" and p.env["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"
    argv = " ".join(p.argv)
    ts = ",".join(f"{x:g}" for x in p.settings.tensor_split)
    assert f"--split-mode layer --tensor-split {ts}" in argv and "--n-gpu-layers 33" in argv
    m = p.memory
    assert len(m.per_gpu) == 2 and all(u <= b for u, b in zip(m.per_gpu, m.per_gpu_budget, strict=True))
    why = next(r for r in p.reasons if r.rule == "multi-gpu-split")
    assert "32768-token context needs" in why.why and "best card can give 9.0 GiB" in why.why and "GPU 1:" in why.why
    assert "memory-fit" not in {r.rule for r in p.reasons}
    assert "per GPU:  GPU 1" in render_plan(p)


def test_user_asks_row_split_on_two_h100s() -> None:
    p = make(L8B, [h100(0, 79), h100(1, 79)], split_mode="row")
    assert p.settings.split_mode == "row" and p.gpus == (0, 1)
    assert p.settings.tensor_split == (pytest.approx(p.memory.per_gpu_budget[0] / GiB, abs=0.05),) * 2
    assert "you asked for split_mode=row" in next(r.why for r in p.reasons if r.rule == "multi-gpu-split")
    w = p.memory.per_gpu
    assert abs(w[0] - w[1]) < 0.1 * w[0]  # rows spread the weights evenly


def test_user_tensor_split_is_kept_and_checked() -> None:
    p = make(L8B, [h100(0, 79), h100(1, 79)], split_mode="layer", tensor_split=[3, 1])
    assert p.settings.tensor_split == (3, 1)
    assert p.memory.per_gpu[0] > 2 * p.memory.per_gpu[1] - 2 * GiB
    with pytest.raises(RequestError, match="tensor_split has 3 values for 2 GPUs"):
        make(L8B, [h100(0, 79), h100(1, 79)], split_mode="layer", tensor_split=[1, 1, 1])


def test_row_split_on_vulkan_is_refused_with_the_fix() -> None:
    with pytest.raises(RequestError) as e:
        make(L8B, [xtx(0), xtx(1)], backends=("llama-server-vulkan",), split_mode="row")
    assert "use split_mode layer" in str(e.value.hint)


def test_dual_7900xtx_splits_a_70b_on_rocm_with_the_seed_rules() -> None:
    # 41.9 GiB of weights over two 24 GiB cards (21.8 GiB budget each) with a pinned 4096-token
    # context: all but a few blocks fit, far more than one card's 38 or so.
    p = make(L70B, [xtx(0), xtx(1)], backends=("llama-server-rocm",), n_parallel=1, n_ctx=4096)
    one = make(L70B, [xtx(0), xtx(1)], backends=("llama-server-rocm",), n_parallel=1, n_ctx=4096, split_mode="none")
    rules = {r.rule for r in p.reasons}
    assert {"rocm-fit-off", "rocm-no-flash-attn", "multi-gpu-split"} <= rules
    assert p.settings.split_mode == "layer" and p.env["HIP_VISIBLE_DEVICES"] in ("0,1", "1,0")
    assert 70 < p.settings.n_gpu_layers < 81 and sum(p.settings.tensor_split) == p.settings.n_gpu_layers
    assert p.settings.n_gpu_layers > 1.8 * one.settings.n_gpu_layers
    assert all(u <= b for u, b in zip(p.memory.per_gpu, p.memory.per_gpu_budget, strict=True))
    assert any("on the CPU" in r.why for r in p.warnings)


def test_split_mode_none_keeps_one_card_and_box_claims_follow_per_gpu() -> None:
    p = make(L70B, [xtx(0), xtx(1)], backends=("llama-server-rocm",), split_mode="none")
    assert p.gpus == (0,) and p.settings.n_gpu_layers < 81  # one card: partial offload
    split = make(L70B, [xtx(0), xtx(1)], backends=("llama-server-rocm",), n_parallel=1, n_ctx=4096)
    report = HardwareReport("test", (xtx(0), xtx(1)), CPU, ())
    claims = {c.label: c.bytes for c in claims_for(split, report, 0.05) if c.kind == "gpu"}
    assert sorted(claims.values()) == sorted(split.memory.per_gpu)


def test_tied_head_small_model_stays_on_one_card(default_model) -> None:
    from xgen_jupyter.core.models.inspect import inspect_model

    p = make(inspect_model(default_model), [h100(0, 79), h100(1, 79)])
    assert p.gpus == (0,) and not p.memory.per_gpu


def test_three_cards_use_the_fewest_that_hold_it() -> None:
    big = llama_shaped(80, 8192, 64, 8, 28672)
    p = make(big, [h100(0, 30), h100(1, 30), h100(2, 30)])
    assert len(p.gpus) == 2 and p.settings.split_mode == "layer"


# b11434's --help: `-sm, --split-mode {none,layer,row,tensor}`; its CUDA build refuses row at load.
B11434 = {"--split-mode", "--split-mode=none", "--split-mode=layer", "--split-mode=row", "--split-mode=tensor"}


def test_row_on_a_build_that_replaced_it_is_refused_with_the_fix() -> None:
    with pytest.raises(RequestError) as e:
        make(L8B, [h100(0, 79), h100(1, 79)], flags=B11434, split_mode="row")
    assert "no row split on CUDA" in e.value.message and "use split_mode tensor" in str(e.value.hint)


def test_tensor_split_on_a_build_that_has_it() -> None:
    p = make(L8B, [h100(0, 79), h100(1, 79)], flags=B11434, split_mode="tensor")
    assert "--split-mode tensor" in " ".join(p.argv) and p.gpus == (0, 1)
    a, b = p.memory.per_gpu
    assert abs(a - b) < 0.02 * a  # equal cards, equal shares
    # b11434 refuses a tensor-split context without flash attention: xgen turns it on, or refuses.
    assert p.settings.flash_attn == "on" and "tensor-needs-fa" in {r.rule for r in p.reasons}
    with pytest.raises(RequestError, match="needs flash attention"):
        make(L8B, [h100(0, 79), h100(1, 79)], flags=B11434, split_mode="tensor", flash_attn="off")
    with pytest.raises(RequestError, match="no tensor split"):
        make(L8B, [h100(0, 79), h100(1, 79)], flags={"--split-mode", "--split-mode=row"}, split_mode="tensor")


def test_engine_refusing_row_is_named_not_blamed_on_the_model() -> None:
    from xgen_jupyter.core.process.causes import classify

    log = "E llama_model_load: error loading model: device CUDA0 does not support split buffers\nfailed to load model"
    c = classify(log, 1)
    assert c.id == "no-row-split" and "split_mode layer" in c.summary and not c.engine_fault


def test_help_choices_become_flags(tmp_path) -> None:
    from xgen_jupyter.core.adapters.probe import help_flags

    fake = tmp_path / "llama-server"
    fake.write_text("#!/bin/sh\necho '-sm,   --split-mode {none,layer,row,tensor}   how to split'\necho '--fit [on|off]'\n")
    fake.chmod(0o755)
    flags = help_flags(str(fake))
    assert {"--split-mode", "--fit", "--split-mode=tensor", "--split-mode=row"} <= flags


def test_cli_and_magic_options_reach_the_request() -> None:
    import argparse

    from xgen_jupyter.core.request_args import add_request_args, request_from_args

    ap = argparse.ArgumentParser()
    add_request_args(ap)
    data = request_from_args(ap.parse_args(["m.gguf", "--split-mode", "layer", "--tensor-split", "3,1"]))
    req = parse_request(data)
    assert req.split_mode == "layer" and req.tensor_split == (3.0, 1.0)
    with pytest.raises(RequestError, match="not a list of numbers"):
        parse_request({"model": "m", "tensor_split": "3,x"})
    with pytest.raises(RequestError, match="split_mode"):
        parse_request({"model": "m", "split_mode": "rows"})
