"""Memory estimate and fit, against values computed by hand (arithmetic in the comments)."""

from __future__ import annotations

import dataclasses

import pytest

from xgen_jupyter.core.errors import RequestError
from xgen_jupyter.core.models.facts import ModelFacts
from xgen_jupyter.core.models.gguf_info import read_gguf
from xgen_jupyter.core.planning import memory
from xgen_jupyter.core.planning.memory import estimate, fit, kv_bytes_per_token

MiB, GiB = 1024**2, 1024**3
CUDA_OVERHEAD = 600 * MiB  # memory.DEVICE_OVERHEAD["cuda"] (measured on an H100), spelled out so a change is noticed
# Without flash attention cuBLAS adds its workspace: memory.BLAS_WORKSPACE_NO_FA["cuda"].
CUDA_OVERHEAD_NO_FA = CUDA_OVERHEAD + 110 * MiB  # 744,488,960


def q4k(n: int) -> int:  # Q4_K: 256 values in 144 bytes
    return n // 256 * 144


def q6k(n: int) -> int:  # Q6_K: 256 values in 210 bytes
    return n // 256 * 210


def llama_shaped(
    n_layer: int, n_embd: int, n_head: int, n_kv: int, n_ff: int, vocab: int = 128256
) -> ModelFacts:
    """Q4_K_M-like facts from tensor shapes: attn_v and ffn_down in Q6_K, the other matrices in
    Q4_K, norms f32, output head Q6_K, token_embd Q4_K. (Real Q4_K_M keeps Q6_K for only some
    layers' attn_v/ffn_down, so these blocks are a little larger than a real file's.)"""
    hd = n_embd // n_head
    block = (
        q4k(n_embd * n_head * hd)  # attn_q
        + q4k(n_embd * n_kv * hd)  # attn_k
        + q6k(n_embd * n_kv * hd)  # attn_v
        + q4k(n_head * hd * n_embd)  # attn_output
        + 2 * q4k(n_embd * n_ff)  # ffn_gate, ffn_up
        + q6k(n_ff * n_embd)  # ffn_down
        + 2 * 4 * n_embd  # attn_norm, ffn_norm
    )
    out = q6k(vocab * n_embd)
    non_layer = q4k(vocab * n_embd) + out + 4 * n_embd
    return ModelFacts(
        path="/x.gguf", format="gguf", name="shaped", architecture="llama", n_layer=n_layer, n_embd=n_embd,
        n_head=n_head, n_head_kv=n_kv, head_dim_k=hd, head_dim_v=hd, n_ctx_train=131072,
        file_size=n_layer * block + non_layer, quantization="Q4_K_M", layer_bytes=(block,) * n_layer,
        non_layer_bytes=non_layer, output_bytes=out, vocab_size=vocab,
    )  # fmt: skip


L8B = llama_shaped(32, 4096, 32, 8, 14336)
L70B = llama_shaped(80, 8192, 64, 8, 28672)


def test_shaped_blocks_by_hand() -> None:
    # 8B block: q 4096*4096 -> 9,437,184; k 4096*1024 -> 2,359,296; v (Q6_K) 3,440,640;
    # o 9,437,184; gate, up 4096*14336 -> 33,030,144 each; down (Q6_K) 48,168,960; norms 32,768
    assert L8B.layer_bytes[0] == 138_936_320
    # 70B block: q 37,748,736; k 4,718,592; v 6,881,280; o 37,748,736; gate, up 132,120,576 each;
    # down 192,675,840; norms 65,536
    assert L70B.layer_bytes[0] == 544_079_872
    assert 40e9 < L70B.weight_bytes < 46e9  # "70B at Q4 is about 40-45 GB"


def test_kv_llama3_8b_is_one_gib() -> None:
    # 32 layers * 8192 cells * 8 heads * (128*2 + 128*2 bytes) = 1,073,741,824 = 1 GiB
    e = estimate(L8B, n_ctx=8192, n_parallel=1, n_gpu_layers=-1)
    assert e.kv_cache == 1 * GiB
    assert kv_bytes_per_token(L8B) == 128 * 1024  # 32 * 8 * 512
    # n_parallel does not multiply a full-attention cache: -c is shared by the slots
    assert estimate(L8B, n_ctx=8192, n_parallel=4, n_gpu_layers=-1).kv_cache == 1 * GiB
    # q8_0: 1024 values/row -> 32 blocks * 34 bytes = 1,088 per K and per V row
    assert estimate(L8B, n_ctx=8192, n_gpu_layers=-1, cache_type_k="q8_0", cache_type_v="q8_0").kv_cache == (
        32 * 8192 * 2 * 1088
    )


def test_kv_70b_is_two_and_a_half_gib() -> None:
    # 80 * 8192 * 8 * 512 = 2,684,354,560 = 2.5 GiB
    assert estimate(L70B, n_ctx=8192, n_gpu_layers=-1).kv_cache == int(2.5 * GiB)


def test_ctx_is_padded_to_256() -> None:
    assert estimate(L8B, n_ctx=1000, n_gpu_layers=-1).kv_cache == 32 * 1024 * 4096  # 1000 -> 1024 cells


def test_gemma_kv_and_totals(default_model: str) -> None:
    g = read_gguf(default_model)
    # -c 4096, 1 slot: 3 global layers * 4096 cells * 1 head * (256*2 + 256*2) = 12,582,912
    #   15 SWA layers * min(4096, 512*1 + 512) = 1024 cells * 1024 = 15,728,640
    # (llama.cpp printed exactly these: 12.00 MiB / 4096 cells and 15.00 MiB / 1024 cells)
    e1 = estimate(g, n_ctx=4096, n_parallel=1, n_gpu_layers=-1)
    assert e1.kv_cache == 12_582_912 + 15_728_640
    # 2 slots: SWA cells 512*2 + 512 = 1536 -> 15 * 1536 * 1024 = 23,592,960
    e2 = estimate(g, n_ctx=4096, n_parallel=2, n_gpu_layers=-1)
    assert e2.kv_cache == 12_582_912 + 23_592_960
    # all on GPU: 18 blocks (68,327,424) + tied head copy (178,257,920); host keeps token_embd + norm
    assert e1.weights_gpu == 68_327_424 + 178_257_920
    assert e1.weights_cpu == 178_257_920 + 2_560
    # compute: logits 512 * 262,144 * 4 = 536,870,912 + 2 rows 512 * 640 * 4 = 2,621,440
    compute_gpu = 539_492_352
    assert e1.gpu_total == e1.weights_gpu + e1.kv_cache + compute_gpu + CUDA_OVERHEAD_NO_FA
    # host: weights + input rows (2,621,440) + mask 512 * 4096 * 4 (8,388,608)
    assert e1.host_total == e1.weights_cpu + 2_621_440 + 8_388_608
    # swa_full gives SWA layers the whole context: 18 * 4096 * 1024
    assert estimate(g, n_ctx=4096, n_gpu_layers=-1, swa_full=True).kv_cache == 18 * 4096 * 1024


def test_compute_matches_llama_cpp_measurements(default_model: str) -> None:
    """Measured on this box with llama-cpp-python 0.3.36 (CPU), gemma-3-270m Q4_K_M:
    'CPU compute buffer size' for (n_ctx, n_ubatch, flash_attn)."""
    g = read_gguf(default_model)
    measured = {(4096, 512, False): 514.50, (131072, 512, False): 1291.76, (65536, 256, False): 325.63,
                (131072, 512, True): 514.50, (65536, 256, True): 257.25}  # fmt: skip
    for (ctx, ub, fa), mib in measured.items():
        got = memory.compute_bytes(g, ctx, 1, ub, fa) / MiB
        assert mib <= got <= mib * 1.01, (ctx, ub, fa, got, mib)


def test_partial_offload_places_last_layers_and_head() -> None:
    blk = L8B.layer_bytes[0]
    kv_layer = 8192 * 8 * 512  # one layer's KV at 8192 cells = 32 MiB
    e16 = estimate(L8B, n_ctx=8192, n_gpu_layers=16)
    assert e16.weights_gpu == 16 * blk  # blocks 16..31, head stays on the CPU
    assert e16.weights_cpu == 16 * blk + L8B.non_layer_bytes
    assert e16.kv_cache == 32 * kv_layer
    assert e16.host_total - e16.weights_cpu > 16 * kv_layer  # CPU layers' KV is in host RAM
    e32 = estimate(L8B, n_ctx=8192, n_gpu_layers=32)
    assert e32.weights_gpu == 32 * blk  # all blocks, output head still on the CPU
    e33 = estimate(L8B, n_ctx=8192, n_gpu_layers=33)
    out = q6k(128256 * 4096)  # 430,940,160
    assert e33.weights_gpu == 32 * blk + out
    assert e33.weights_cpu == L8B.non_layer_bytes - out  # token_embd + output_norm stay
    assert estimate(L8B, n_ctx=8192, n_gpu_layers=-1) == e33 == estimate(L8B, n_ctx=8192, n_gpu_layers=999)
    # compute without flash attention: scores 512*8192*32*4 = 536,870,912 + mask 512*8192*4 =
    # 16,777,216 + rows 6*512*32*128*4 = 50,331,648 -> 603,979,776 (the logits, 279,445,504, are smaller)
    assert e33.gpu_total == e33.weights_gpu + 32 * kv_layer + 603_979_776 + CUDA_OVERHEAD_NO_FA
    # with flash attention the logits dominate: 512*128256*4 + 2*512*4096*4 = 279,445,504
    fa = estimate(L8B, n_ctx=8192, n_gpu_layers=-1, flash_attn=True)
    assert fa.gpu_total == e33.weights_gpu + 32 * kv_layer + 279_445_504 + CUDA_OVERHEAD


def test_cpu_device_and_overheads() -> None:
    c = estimate(L8B, n_ctx=4096, n_gpu_layers=-1, device="cpu")
    assert c.gpu_total == 0 and c.weights_gpu == 0 and c.overhead == 0 and c.budget is None
    assert c.weights_cpu == L8B.weight_bytes
    v = estimate(L8B, n_ctx=4096, n_gpu_layers=-1, device="vulkan")
    r = estimate(L8B, n_ctx=4096, n_gpu_layers=-1, device="rocm")
    assert v.overhead < r.overhead and v.gpu_total < r.gpu_total


def test_per_layer_kv_heads_skip_layers_without_cache() -> None:
    hybrid = dataclasses.replace(L8B, n_head_kv_layers=(8, 0) * 16)  # every other layer has no KV
    assert estimate(hybrid, n_ctx=8192, n_gpu_layers=-1).kv_cache == GiB // 2


def test_unknown_cache_type() -> None:
    with pytest.raises(RequestError):
        estimate(L8B, n_ctx=4096, n_gpu_layers=-1, cache_type_k="q3_k")


# -- fit ---------------------------------------------------------------------------------------------
def test_fit_everything_fits() -> None:
    r = fit(L8B, budget_bytes=20 * GiB, n_ctx=8192)
    assert (r.n_gpu_layers, r.n_ctx, r.notes, r.fits) == (33, 8192, [], True)
    assert r.estimate.gpu_total <= 20 * GiB and r.estimate.budget == 20 * GiB


def test_fit_shrinks_ctx_before_dropping_layers() -> None:
    # All 8B layers on GPU at context C (no flash attention):
    #   weights 32 * 138,936,320 + head 430,940,160 = 4,876,902,400
    #   + overhead 744,488,960 (600 MiB + 110 MiB cuBLAS workspace) + rows 50,331,648
    #   + C * (KV 131,072 + scores 512*32*4 = 65,536 + mask 512*4 = 2,048) = 5,671,723,008 + 198,656 C
    # C=32768 -> 12,181,282,816; 16384 -> 8,926,502,912; 8192 -> 7,299,112,960
    # budget 8 GiB = 8,589,934,592: 16384 does not fit, 8192 does.
    r = fit(L8B, budget_bytes=8 * GiB, n_ctx=32768)
    assert (r.n_gpu_layers, r.n_ctx, r.fits) == (33, 8192, True)
    assert r.estimate.gpu_total == 7_299_112_960
    assert len(r.notes) == 1 and "32768 to 8192" in r.notes[0]


def test_fit_pinned_ctx_moves_layers_instead() -> None:
    # Pinned at 32768: per block on GPU 138,936,320 + KV 32768*4096 = 134,217,728 -> 273,154,048.
    # Fixed: overhead 744,488,960 + compute (scores + mask 67,584 * 32768 = 2,214,592,512, rows
    #   50,331,648) = 3,009,413,120. (8,589,934,592 - 3,009,413,120) / 273,154,048 = 20.4 -> 20.
    r = fit(L8B, budget_bytes=8 * GiB, n_ctx=32768, ctx_pinned=True)
    assert (r.n_gpu_layers, r.n_ctx, r.fits) == (20, 32768, True)
    assert any("set explicitly" in n for n in r.notes)
    assert any("12 of 32 layers" in n for n in r.notes)


def test_fit_70b_on_24_gib_offloads_partially() -> None:
    # ctx halves 8192 -> 4096 -> 2048 (the floor) and all 81 still do not fit; then at 2048:
    # per block 544,079,872 + KV 2048*4096 = 8,388,608 -> 552,468,480
    # fixed: overhead 744,488,960 + compute max(scores 512*2048*64*4 = 268,435,456 + mask 4,194,304
    #   + rows 6*512*64*128*4 = 100,663,296 = 373,293,056; logits 296,222,720) = 1,117,782,016
    # (25,769,803,776 - 1,117,782,016) / 552,468,480 = 44.6 -> 44 blocks on the GPU
    r = fit(L70B, budget_bytes=24 * GiB, n_ctx=8192, n_ctx_min=2048)
    assert (r.n_gpu_layers, r.n_ctx, r.fits) == (44, 2048, True)
    assert r.estimate.gpu_total == 1_117_782_016 + 44 * 552_468_480
    assert r.estimate.gpu_total <= 24 * GiB < r.estimate.gpu_total + 552_468_480
    assert len(r.notes) == 2 and "8192 to 2048" in r.notes[0] and "36 of 80 layers" in r.notes[1]


def test_fit_never_below_min_or_requested() -> None:
    r = fit(L70B, budget_bytes=24 * GiB, n_ctx=1024, n_ctx_min=2048)
    assert r.n_ctx == 1024  # a request below the floor is not raised, nor shrunk
    r = fit(L70B, budget_bytes=24 * GiB, n_ctx=16384, n_ctx_min=4096)
    assert r.n_ctx == 4096


def test_fit_nothing_fits_and_cpu() -> None:
    r = fit(L8B, budget_bytes=100 * MiB, n_ctx=4096)
    assert (r.n_gpu_layers, r.fits) == (0, False) and "CPU engine" in r.notes[-1]
    c = fit(L8B, budget_bytes=0, n_ctx=4096, device="cpu")
    assert (c.n_gpu_layers, c.n_ctx, c.fits, c.notes) == (0, 4096, True, [])


def test_fit_gemma_swa_on_small_budget(default_model: str) -> None:
    g = read_gguf(default_model)
    r = fit(g, budget_bytes=2 * GiB, n_ctx=32768)
    assert r.n_gpu_layers == 19 and r.n_ctx == 32768  # ~1.3 GiB: SWA keeps the cache small


def test_llama_server_per_slot_attention_and_logits() -> None:
    """llama-server with --parallel N attends over n_ctx/N cells and reserves one logit row
    per slot (both measured on an H100, benchmarks/results/h100.md case 3: 572 MiB compute
    for -c 32768 -np 4 without flash attention, where the whole context would give 2 GiB)."""
    # per slot 8192 cells: scores 512*8192*32*4 = 536,870,912 + mask 512*8192*4 = 16,777,216
    #   + rows 50,331,648 = 603,979,776 (the logits, 4 rows * 128256 * 4 + 2*512*4096*4, are smaller)
    assert memory.compute_bytes(L8B, 32768, 4, 512, False, n_outputs=4, per_seq_attention=True) == 603_979_776
    # one slot: unchanged by the flag
    assert memory.compute_bytes(L8B, 8192, 1, 512, False, 1, True) == memory.compute_bytes(L8B, 8192, 1, 512, False)


def test_head_first_partial_offload_as_llama_server_b11434() -> None:
    # b11434: -ngl N puts the output head on the GPU first, then the last N-1 blocks (seen on
    # lavapipe with gemma-3-270m: "-ngl 5: offloading output layer, 4 repeating layers").
    blk = L8B.layer_bytes[0]
    out = q6k(128256 * 4096)
    e = estimate(L8B, n_ctx=8192, n_gpu_layers=16, head_first=True)
    assert e.weights_gpu == 15 * blk + out  # head + blocks 17..31
    assert e.weights_cpu == 17 * blk + L8B.non_layer_bytes - out
    assert estimate(L8B, n_ctx=8192, n_gpu_layers=1, head_first=True).weights_gpu == out
    # full offload is the same either way
    assert estimate(L8B, n_ctx=8192, n_gpu_layers=-1, head_first=True) == estimate(L8B, n_ctx=8192, n_gpu_layers=-1)
    res = fit(L8B, budget_bytes=3 * GiB, n_ctx=8192, ctx_pinned=True, head_first=True)
    assert res.estimate.gpu_total <= 3 * GiB and "layers run on the CPU" in res.notes[-1]
    assert f"{33 - res.n_gpu_layers} of 32 layers" in res.notes[-1]
