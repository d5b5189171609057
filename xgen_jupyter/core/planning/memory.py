"""How many bytes a llama.cpp engine will take, per place, and the largest -ngl that fits.

We estimate instead of trusting llama.cpp's ``--fit``, which misreads VRAM on ROCm (the
seed's page faults). Every term mirrors what llama.cpp allocates; constants that are
guesses are named and say so, to be checked against measurements on a real GPU.

Terms (all in bytes):

* weights: llama.cpp offloads the LAST ``n_gpu_layers`` blocks (``blk.N``); the output
  head joins them only when ``n_gpu_layers > n_layer``. The token embedding always stays
  in host memory (llama.cpp's input layer is on the CPU); a tied output head is a second
  copy of it on the output device.
* KV cache: each layer's cache lives with its layer (``--no-kv-offload`` is not modelled).
  Per layer: ``cells * n_head_kv * (head_dim_k * bytes(type_k) + head_dim_v * bytes(type_v))``.
  ``n_ctx`` is the engine's total context (``-c``), which llama-server shares among its
  ``n_parallel`` slots, so a full-attention layer has ``n_ctx`` cells whatever n_parallel is.
* compute: the graph allocator's peak for one ubatch (see ``compute_bytes``).
* overhead: the GPU runtime's own context (see ``DEVICE_OVERHEAD``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ..models.facts import ModelFacts
from ..units import MiB, gib
from .buffers import ATTN_ROWS as ATTN_ROWS
from .buffers import CTX_PAD as CTX_PAD
from .buffers import FFN_EMBD_ROWS as FFN_EMBD_ROWS
from .buffers import KV_TYPE_SIZE as KV_TYPE_SIZE
from .buffers import OUT_ROWS as OUT_ROWS
from .buffers import _pad as _pad
from .buffers import compute_bytes as compute_bytes
from .buffers import compute_parts as compute_parts
from .buffers import kv_bytes_per_token as kv_bytes_per_token
from .buffers import kv_cells as kv_cells
from .buffers import layer_kv_bytes_per_cell as layer_kv_bytes_per_cell
from .buffers import type_bytes as type_bytes
from .plan import MemoryEstimate

Device = Literal["cuda", "rocm", "vulkan", "cpu"]

#: Memory the GPU runtime takes beyond llama.cpp's own buffers. CUDA: measured on an H100
#: (driver 580, llama.cpp b11434): 588-601 MiB per engine process in every case
#: (benchmarks/results/h100.md); we take 600. ROCm (HIP context + rocBLAS kernels) is not
#: measured here: assumed like CUDA. Vulkan keeps little beyond its pipelines (assumed).
DEVICE_OVERHEAD: dict[str, int] = {"cuda": 600 * MiB, "rocm": 600 * MiB, "vulkan": 200 * MiB, "cpu": 0}
#: cuBLAS's workspace, allocated at the first request that needs cuBLAS: attention without flash
#: attention (H100: 709 vs 601 MiB), or a MoE's f32 router.
BLAS_WORKSPACE_NO_FA: dict[str, int] = {"cuda": 110 * MiB, "rocm": 110 * MiB}


def normalize_ngl(facts: ModelFacts, n_gpu_layers: int) -> int:
    """-1 or anything above n_layer means every block plus the output head (n_layer + 1)."""
    if n_gpu_layers < 0 or n_gpu_layers > facts.n_layer:
        return facts.n_layer + 1
    return n_gpu_layers


def estimate(
    facts: ModelFacts,
    *,
    n_ctx: int,
    n_parallel: int = 1,
    n_gpu_layers: int,
    n_ubatch: int = 512,
    cache_type_k: str = "f16",
    cache_type_v: str = "f16",
    device: str = "cuda",
    flash_attn: bool = False,
    swa_full: bool = False,
    budget: int | None = None,
    n_outputs: int | None = None,
    per_seq_attention: bool = False,
    head_first: bool = False,
) -> MemoryEstimate:
    """Bytes on the GPU and in host RAM for one llama.cpp engine with these settings.

    ``head_first``: ``-ngl N`` offloads the output head first, then the last N-1 blocks, as
    llama-server b11434 does (read in llama_model::load_tensors and seen on lavapipe: "-ngl 5:
    offloading output layer, 4 repeating layers"); older builds offload the last N blocks and the
    head only at N > n_layer."""
    on_gpu_dev = device != "cpu"
    ngl = normalize_ngl(facts, n_gpu_layers) if on_gpu_dev else 0
    on_gpu_blocks = min(ngl, facts.n_layer) if not head_first else max(ngl - 1, 0)
    first_gpu = facts.n_layer - on_gpu_blocks  # blocks first_gpu .. n_layer-1 are offloaded
    output_on_gpu = ngl > facts.n_layer or (head_first and ngl > 0)
    w_gpu = sum(facts.layer_bytes[first_gpu:]) if ngl else 0
    w_cpu = sum(facts.layer_bytes[:first_gpu]) + facts.non_layer_bytes
    if output_on_gpu:
        w_gpu += facts.output_bytes
        if not facts.output_tied:
            w_cpu -= facts.output_bytes  # a separate head moves; a tied one is copied
    kv_gpu = kv_cpu = 0
    for il in range(facts.n_layer):
        b = kv_cells(facts, il, n_ctx, n_parallel, n_ubatch, swa_full) * layer_kv_bytes_per_cell(
            facts, il, cache_type_k, cache_type_v
        )
        if ngl and il >= first_gpu:
            kv_gpu += b
        else:
            kv_cpu += b
    graph = compute_bytes(facts, n_ctx, n_parallel, n_ubatch, flash_attn, n_outputs, per_seq_attention)
    # A GPU build reserves the whole graph on the GPU even at -ngl 0 (it offloads large
    # matmuls); the host keeps the inputs (embeddings, mask), or the whole graph when
    # layers run on the CPU.
    comp_gpu = graph if on_gpu_dev else 0
    if not on_gpu_dev or first_gpu > 0:
        comp_cpu = graph
    else:
        comp_cpu = OUT_ROWS * n_ubatch * facts.n_embd * 4 + n_ubatch * _pad(n_ctx) * 4
    overhead = DEVICE_OVERHEAD.get(device, DEVICE_OVERHEAD["cuda"]) if on_gpu_dev else 0
    if on_gpu_dev and (not flash_attn or facts.is_moe):
        # A MoE's router (ffn_gate_inp) stays f32 in every GGUF: its matmul goes to cuBLAS too
        # (H200, 30B-A3B shape: +122 MiB at the first request, with flash attention on).
        overhead += BLAS_WORKSPACE_NO_FA.get(device, 0)
    return MemoryEstimate(
        weights_gpu=w_gpu,
        weights_cpu=w_cpu,
        kv_cache=kv_gpu + kv_cpu,
        compute=comp_gpu + comp_cpu,
        overhead=overhead,
        gpu_total=w_gpu + kv_gpu + comp_gpu + overhead if on_gpu_dev else 0,
        host_total=w_cpu + kv_cpu + comp_cpu,
        budget=budget if on_gpu_dev else None,
    )


@dataclass(frozen=True)
class FitResult:
    n_gpu_layers: int
    n_ctx: int
    estimate: MemoryEstimate
    #: One sentence per adjustment; the planner shows them as plan reasons.
    notes: list[str] = field(default_factory=list)
    #: False when even -ngl 0 leaves the GPU over budget (the caller should pick a CPU engine).
    fits: bool = True


def fit(
    facts: ModelFacts,
    *,
    budget_bytes: int,
    n_ctx: int,
    n_ctx_min: int = 2048,
    ctx_pinned: bool = False,
    n_parallel: int = 1,
    n_ubatch: int = 512,
    cache_type_k: str = "f16",
    cache_type_v: str = "f16",
    device: str = "cuda",
    flash_attn: bool = False,
    swa_full: bool = False,
    n_outputs: int | None = None,
    per_seq_attention: bool = False,
    head_first: bool = False,
) -> FitResult:
    """Largest -ngl whose GPU total fits ``budget_bytes`` (free memory minus the caller's
    margin). Shrinks the context first (halving, never below ``n_ctx_min`` nor below a
    user-pinned ``n_ctx``), then moves blocks to the CPU, starting with the first."""

    def est(ngl: int, ctx: int) -> MemoryEstimate:
        return estimate(facts, n_ctx=ctx, n_parallel=n_parallel, n_gpu_layers=ngl, n_ubatch=n_ubatch,
                        cache_type_k=cache_type_k, cache_type_v=cache_type_v, device=device,
                        flash_attn=flash_attn, swa_full=swa_full, budget=budget_bytes,
                        n_outputs=n_outputs, per_seq_attention=per_seq_attention,
                        head_first=head_first)  # fmt: skip

    if device == "cpu":
        return FitResult(0, n_ctx, est(0, n_ctx))
    all_layers = facts.n_layer + 1
    notes: list[str] = []
    ctx = n_ctx
    full = est(all_layers, ctx)
    if full.gpu_total <= budget_bytes:
        return FitResult(all_layers, ctx, full)
    floor = n_ctx if ctx_pinned else min(n_ctx, n_ctx_min)
    while ctx > floor:
        ctx = max(ctx // 2, floor)
        cur = est(all_layers, ctx)
        if cur.gpu_total <= budget_bytes:
            notes.append(
                f"Context reduced from {n_ctx} to {ctx} tokens so that all {facts.n_layer} layers fit "
                f"on the GPU ({gib(full.gpu_total)} needed at {n_ctx}, {gib(budget_bytes)} available)."
            )
            return FitResult(all_layers, ctx, cur, notes)
    if ctx < n_ctx:
        notes.append(
            f"Context reduced from {n_ctx} to {ctx} tokens, the smallest allowed, and the model still "
            f"does not fit entirely in {gib(budget_bytes)} of GPU memory."
        )
    elif ctx_pinned:
        notes.append(f"Context {n_ctx} was set explicitly, so it is kept; layers move to the CPU instead.")
    for ngl in range(facts.n_layer, -1, -1):
        cur = est(ngl, ctx)
        if cur.gpu_total <= budget_bytes:
            if head_first:
                what = f"{facts.n_layer + 1 - ngl} of {facts.n_layer} layers run"
            else:
                off = facts.n_layer - ngl
                what = (
                    f"{off} of {facts.n_layer} layers and the output head run"
                    if off
                    else "The output head runs"
                )
            notes.append(
                f"{what} on the CPU because the whole model needs "
                f"{gib(est(all_layers, ctx).gpu_total)} of GPU memory and {gib(budget_bytes)} is "
                "available; generation will be slower."
            )
            return FitResult(ngl, ctx, cur, notes)
    notes.append(
        f"Even with no layers on the GPU the engine's buffers need {gib(cur.gpu_total)}, more than the "
        f"{gib(budget_bytes)} available; use a CPU engine or free GPU memory."
    )
    return FitResult(0, ctx, cur, notes, fits=False)
