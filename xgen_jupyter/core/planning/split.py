"""One model across several GPUs of a box: llama.cpp's ``--split-mode layer``, ``row``, ``tensor``.

How llama.cpp (b11434, the engine xgen builds) places a split model, mirrored here:

* ``-ngl N`` offloads the output head first, then the last ``N - 1`` blocks; block ``il`` (the
  head counts as block ``n_layer``) goes to the first device whose cumulative share of
  ``--tensor-split`` exceeds ``(il - first) / N`` (``llama_model::load_tensors``).
* ``layer``: each device holds its blocks' weights and their KV cache, and a compute buffer as
  large as the whole graph's peak (measured: the same on each card as on one card alone). With
  every layer on GPUs the scheduler runs a pipeline and keeps ``PIPELINE_COPIES`` copies of each
  device's inputs.
* ``row``: blocks (so KV cache and compute) are placed as above, but every matrix is cut by
  rows across all devices in the ``--tensor-split`` proportions, so weights spread evenly.
  b11434 keeps row split buffers only for SYCL: its CUDA, HIP and Vulkan builds refuse ``row``
  ("does not support split buffers") and offer ``tensor`` instead.
* ``tensor`` (b11434, experimental): one meta device; matrices, the output head and the KV
  cache (by heads) are cut across all cards in the ``--tensor-split`` proportions, and every
  card runs the whole graph, so each holds a full compute buffer.

xgen passes ``--tensor-split`` as whole block counts (``17,16``), which makes llama.cpp's
float comparison land exactly on the planned boundaries.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

from ..models.facts import ModelFacts
from ..units import MiB
from .memory import (
    BLAS_WORKSPACE_NO_FA,
    DEVICE_OVERHEAD,
    OUT_ROWS,
    _pad,
    compute_parts,
    kv_cells,
    layer_kv_bytes_per_cell,
    normalize_ngl,
)
from .plan import MemoryEstimate

#: ggml's GGML_SCHED_MAX_COPIES: input copies kept per device when layers run as a pipeline.
PIPELINE_COPIES = 4
#: ``--split-mode tensor`` takes this much on each card beyond its buffers and the runtime,
#: already at load: measured on two H200s (b11434) as 813-824 MiB in five configurations
#: (ubatch 256/512/1024, shares 1:1 and 3:1, 1 and 4 slots): a constant, not a scaling term.
TENSOR_SPLIT_OVERHEAD = 820 * MiB


def _f32(x: float) -> float:
    return float(struct.unpack("f", struct.pack("f", x))[0])


def layer_devices(n_layer: int, n_gpu_layers: int, shares: Sequence[float]) -> list[int | None]:
    """The device of each block and, last, of the output head (None: the CPU), computed in
    float32 as llama.cpp does so that boundaries fall where the engine puts them."""
    n_dev = len(shares)
    ngl = max(0, min(n_gpu_layers, n_layer + 1))
    if n_dev == 0 or ngl == 0:
        return [None] * (n_layer + 1)
    cum: list[float] = []
    total = 0.0
    for s in shares:
        total = _f32(total + _f32(s))
        cum.append(total)
    cum = [_f32(c / total) for c in cum] if total > 0 else [_f32((i + 1) / n_dev) for i in range(n_dev)]
    first = n_layer + 1 - ngl
    out: list[int | None] = []
    for il in range(n_layer + 1):
        if il < first:
            out.append(None)
            continue
        x = _f32((il - first) / ngl)
        dev = next((i for i, c in enumerate(cum) if c > x), n_dev - 1)  # std::upper_bound
        out.append(dev)
    return out


@dataclass(frozen=True)
class SplitEstimate:
    per_gpu: tuple[int, ...]
    #: Blocks per device; the output head counts as one on the last device that has any.
    layers: tuple[int, ...]
    estimate: MemoryEstimate
    #: Per device: what does not move with the blocks (compute buffers, runtime overhead).
    fixed: tuple[int, ...] = ()


def estimate_split(
    facts: ModelFacts,
    *,
    shares: Sequence[float],
    mode: str = "layer",
    n_ctx: int,
    n_parallel: int = 1,
    n_gpu_layers: int = -1,
    n_ubatch: int = 512,
    cache_type_k: str = "f16",
    cache_type_v: str = "f16",
    device: str = "cuda",
    flash_attn: bool = False,
    n_outputs: int | None = None,
    per_seq_attention: bool = False,
    budgets: Sequence[int] = (),
) -> SplitEstimate:
    """Bytes on each device and on the host for one engine split over ``len(shares)`` GPUs."""
    n_dev = len(shares)
    ngl = normalize_ngl(facts, n_gpu_layers)
    where = layer_devices(facts.n_layer, ngl, shares)
    total_share = sum(shares) or 1.0
    frac = [s / total_share for s in shares]
    weights, kv, comp = [0] * n_dev, [0] * n_dev, [0] * n_dev
    w_cpu, kv_cpu = facts.non_layer_bytes, 0

    spread = mode in ("row", "tensor")

    def place(nbytes: int, dev: int | None) -> None:
        if spread:
            for j in range(n_dev):
                weights[j] += int(nbytes * frac[j])
        else:
            weights[dev or 0] += nbytes

    for il in range(facts.n_layer):
        dev = where[il]
        b = kv_cells(facts, il, n_ctx, n_parallel, n_ubatch) * layer_kv_bytes_per_cell(
            facts, il, cache_type_k, cache_type_v
        )
        if dev is None:
            w_cpu += facts.layer_bytes[il]
            kv_cpu += b
        else:
            place(facts.layer_bytes[il], dev)
            if mode == "tensor":  # KV heads are split like the attention matrices
                for j in range(n_dev):
                    kv[j] += int(b * frac[j])
            else:
                kv[dev] += b
    head = where[facts.n_layer]
    if head is not None:
        place(facts.output_bytes, head)
        if not facts.output_tied:
            w_cpu -= facts.output_bytes  # a separate head moves; a tied one is copied
    out, attn = compute_parts(facts, n_ctx, n_parallel, n_ubatch, flash_attn, n_outputs, per_seq_attention)
    graph = max(out, attn)
    hosts = [
        mode == "tensor" or any(d == j for d in where[: facts.n_layer]) or head == j for j in range(n_dev)
    ]
    # Pipeline (layer split, every layer on GPUs): each card keeps PIPELINE_COPIES - 1 extra
    # copies of its inputs (hidden state and KQ mask), the first card three more hidden-state
    # sized ones (measured on two H200s: +36 and +108 MiB at ubatch 512, n_embd 4096, mask 4 MiB).
    pipeline = mode == "layer" and n_dev > 1 and ngl > facts.n_layer
    n_kv = _pad(n_ctx // n_parallel if per_seq_attention and n_parallel > 1 else n_ctx)
    hidden = n_ubatch * facts.n_embd * 4
    pipe_inputs = hidden + n_ubatch * n_kv * (2 if flash_attn else 4)
    first = next((j for j in range(n_dev) if hosts[j]), 0)
    overhead = DEVICE_OVERHEAD.get(device, DEVICE_OVERHEAD["cuda"])
    if not flash_attn:
        overhead += BLAS_WORKSPACE_NO_FA.get(device, 0)
    if mode == "tensor":
        overhead += TENSOR_SPLIT_OVERHEAD
    per_gpu: list[int] = []
    fixed: list[int] = []
    for j in range(n_dev):
        # Each card's compute buffer is sized for the whole graph's peak (measured: the same
        # 120 MiB on each card of a layer split as on one card alone).
        c = graph if hosts[j] else 0
        if pipeline and hosts[j]:
            c += (PIPELINE_COPIES - 1) * (pipe_inputs + (3 * hidden if j == first else 0))
        comp[j] = c
        used = weights[j] or kv[j] or c
        fixed.append(c + (overhead if used else 0))
        per_gpu.append(weights[j] + kv[j] + fixed[j])
    any_cpu_block = any(d is None for d in where[: facts.n_layer])
    comp_cpu = (
        max(out, attn)
        if any_cpu_block
        else OUT_ROWS * n_ubatch * facts.n_embd * 4 + n_ubatch * _pad(n_ctx) * 4
    )
    est = MemoryEstimate(
        weights_gpu=sum(weights), weights_cpu=w_cpu, kv_cache=sum(kv) + kv_cpu,
        compute=sum(comp) + comp_cpu, overhead=sum(overhead for p in per_gpu if p),
        gpu_total=sum(per_gpu), host_total=w_cpu + kv_cpu + comp_cpu,
        budget=sum(budgets) if budgets else None, per_gpu=tuple(per_gpu), per_gpu_budget=tuple(budgets),
    )  # fmt: skip
    layers = tuple(sum(1 for d in where if d == j) for j in range(n_dev))
    return SplitEstimate(tuple(per_gpu), layers, est, tuple(fixed))
