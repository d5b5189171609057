"""Memory of a llama.cpp engine with the routed experts of some blocks kept on the CPU.

``--n-cpu-moe K`` (or ``-ot 'blk\\.(0|..|K-1)\\.ffn_(up|down|gate)_exps=CPU'``) keeps the expert
tensors of the first K blocks in host memory while attention, the KV cache, the router and any
shared experts stay on the GPU. For a prompt the engine still runs those matrix products on the
GPU (op offload): ggml's scheduler copies one CPU-side weight at a time into the GPU's compute
buffer (it starts a new split at each such weight so the copy's memory is reused), so the GPU's
compute buffer grows by about the largest expert tensor.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ..models.facts import ModelFacts
from . import memory
from .plan import MemoryEstimate

#: Expert-tensor copies alive at once in the GPU compute buffer when experts are on the CPU.
EXPERT_COPIES = 1
#: The tensor names --n-cpu-moe matches (llama.cpp common/arg.cpp, llm_ffn_exps_block_regex).
EXPERT_PATTERN = r"ffn_(up|down|gate|gate_up)_(ch|)exps"


def blocks_on_gpu(facts: ModelFacts, n_gpu_layers: int, head_first: bool) -> range:
    ngl = memory.normalize_ngl(facts, n_gpu_layers)
    blocks = max(ngl - 1, 0) if head_first else min(ngl, facts.n_layer)
    return range(facts.n_layer - blocks, facts.n_layer)


def can_split_block(facts: ModelFacts) -> bool:
    """True when each block's experts are three equal tensors (gate, up, down), so that one or two
    of them can be placed apart (``partial``); merged gate_up layouts are not split."""
    eb = facts.layer_expert_bytes
    return bool(eb) and facts.expert_tensor_max > 0 and all(b == 3 * facts.expert_tensor_max for b in eb)


def estimate(
    facts: ModelFacts, *, n_gpu_layers: int, n_cpu_moe: int = 0, partial: int = 0, **kw: Any
) -> MemoryEstimate:
    """memory.estimate with the experts of blocks ``0 .. n_cpu_moe-1`` moved to the CPU, and
    ``partial`` (1 or 2) of the three expert tensors of block ``n_cpu_moe``."""
    est = memory.estimate(facts, n_gpu_layers=n_gpu_layers, **kw)
    if (n_cpu_moe <= 0 and partial <= 0) or not facts.layer_expert_bytes or kw.get("device") == "cpu":
        return est
    on_gpu = blocks_on_gpu(facts, n_gpu_layers, kw.get("head_first", False))
    moved = sum(facts.layer_expert_bytes[il] for il in on_gpu if il < n_cpu_moe)
    if partial and n_cpu_moe in on_gpu:
        moved += partial * facts.expert_tensor_max
    if moved == 0:
        return est
    extra = EXPERT_COPIES * facts.expert_tensor_max
    return replace(
        est,
        weights_gpu=est.weights_gpu - moved,
        weights_cpu=est.weights_cpu + moved,
        compute=est.compute + extra,
        gpu_total=est.gpu_total - moved + extra,
        host_total=est.host_total + moved,
    )


#: Which expert tensors of the boundary block go to the CPU first: down, then up.
PARTIAL_TENSORS = {1: "ffn_down_exps", 2: "ffn_(up|down)_exps"}


def override_pattern(n_cpu_moe: int, partial: int = 0, *, full_blocks: bool = True) -> str:
    """The ``--override-tensor`` value: the experts of blocks 0..n_cpu_moe-1 (as ``--n-cpu-moe``
    does, for builds without that flag; left out with ``full_blocks=False``) and ``partial`` expert
    tensors of block ``n_cpu_moe``."""
    out = []
    if full_blocks and n_cpu_moe > 0:
        blocks = "|".join(str(i) for i in range(n_cpu_moe))
        out.append(rf"blk\.({blocks})\.{EXPERT_PATTERN}=CPU")
    if partial:
        out.append(rf"blk\.{n_cpu_moe}\.{PARTIAL_TENSORS[partial]}=CPU")
    return ",".join(out)
