"""vLLM plans sized like llama.cpp ones: an estimate of what vLLM takes on a GPU, and just that.

vLLM left alone takes ``--gpu-memory-utilization`` (0.9) of every card it is given and refuses to
start when that much is not free. xgen estimates instead:

* weights: the safetensors bytes, at the dtype vLLM runs (``auto`` runs a float32 checkpoint in
  16 bits);
* KV cache: ``max_model_len`` tokens for each of ``n_parallel`` sequences, in 16-token blocks,
  ``2 x n_kv_heads x head_dim`` 16-bit values per token and layer;
* activations of the profiling forward pass (``max_num_batched_tokens`` rows) and the sampler's
  logits, CUDA graphs, and the runtime (CUDA context, torch, cuBLAS): named guesses, not yet
  measured on a GPU (the lent GPU machine has no vLLM).

The plan passes ``--kv-cache-memory-bytes`` (the KV term) and a ``--gpu-memory-utilization``
computed from the estimate and the card's total, and the box registry reserves the estimate.
"""

from __future__ import annotations

from typing import Any

from ..hardware.types import GPUInfo
from ..models.facts import ModelFacts
from ..units import gib as gib_text
from .margin import Margin
from .plan import MemoryEstimate, Reason

MiB = 1024**2
BLOCK = 16
#: vLLM's default token budget of one scheduler step (the profiling pass's rows).
BATCHED_TOKENS = 8192
#: CUDA graphs of the decode batch sizes (vLLM logs "took 0.3-0.9 GiB" on 7-8B models): a guess.
CUDA_GRAPHS = 512 * MiB
#: CUDA context, torch and cuBLAS workspaces beside vLLM's own pools: a guess.
RUNTIME = 1024 * MiB
_DTYPE_BYTES = {"float32": 4, "float": 4, "float16": 2, "half": 2, "bfloat16": 2, "bf16": 2, "fp16": 2}


def weight_bytes(facts: ModelFacts, dtype: str | None) -> int:
    stored = _DTYPE_BYTES.get(str(facts.dtype or "").lower())
    want = _DTYPE_BYTES.get(str(dtype or "auto").lower())
    if want is None:  # auto: 16 bits for float32 checkpoints, as stored otherwise
        want = 2 if stored == 4 else stored
    if stored and want and facts.n_params:
        return facts.n_params * want
    return facts.weight_bytes


def kv_bytes(facts: ModelFacts, max_model_len: int, n_seqs: int) -> int:
    tokens = -(-max_model_len // BLOCK) * BLOCK * max(1, n_seqs)
    per_token = sum(2 * facts.kv_heads(il) * max(facts.head_dim_k, facts.head_dim_v) * 2 for il in range(facts.n_layer))
    return tokens * per_token


def estimate(facts: ModelFacts, *, max_model_len: int, n_seqs: int, dtype: str | None = None) -> MemoryEstimate:
    w = weight_bytes(facts, dtype)
    kv = kv_bytes(facts, max_model_len, n_seqs)
    tokens = min(BATCHED_TOKENS, max(2048, max_model_len))
    act = tokens * (4 * facts.n_embd + 2 * max(facts.n_ff, facts.n_embd)) * 2 + max(1, n_seqs) * facts.vocab_size * 4 * 2
    over = CUDA_GRAPHS + RUNTIME
    return MemoryEstimate(weights_gpu=w, weights_cpu=0, kv_cache=kv, compute=act, overhead=over,
                          gpu_total=w + kv + act + over, host_total=0)  # fmt: skip


def fit(
    facts: ModelFacts, values: dict[str, Any], gpu: GPUInfo, margin: Margin, flags: frozenset[str]
) -> tuple[MemoryEstimate, list[Reason]]:
    """Size a vLLM plan on ``gpu``: sets kv_cache_memory_bytes and gpu_memory_utilization."""
    est = estimate(facts, max_model_len=int(values["max_model_len"]), n_seqs=int(values["n_parallel"]),
                   dtype=values.get("dtype"))  # fmt: skip
    free = gpu.memory_free if gpu.memory_free is not None else gpu.memory_total
    want = est.gpu_total + margin.for_bytes(est.gpu_total)
    reasons: list[Reason] = []
    # Flags unknown (not probed): vLLM has had --kv-cache-memory-bytes since 0.11.
    if not flags or "--kv-cache-memory-bytes" in flags:
        values.setdefault("kv_cache_memory_bytes", est.kv_cache)
    util = min(0.95, max(0.05, -(-want * 100 // gpu.memory_total) / 100))
    values.setdefault("gpu_memory_utilization", util)
    what = f"--gpu-memory-utilization {values['gpu_memory_utilization']:g}"
    if values.get("kv_cache_memory_bytes"):
        what += f", --kv-cache-memory-bytes {values['kv_cache_memory_bytes']}"
    why = (f"vLLM estimated at {gib_text(est.gpu_total)} on {gpu.name} (weights {gib_text(est.weights_gpu)}, KV "
           f"{gib_text(est.kv_cache)} for {values['n_parallel']} x {values['max_model_len']} tokens, activations and "
           f"graphs {gib_text(est.compute + est.overhead)}), {gib_text(free)} free; it takes that, not 90% of the card")  # fmt: skip
    reasons.append(Reason("vllm-size", what, why))
    if want > free:
        reasons.append(Reason("vllm-size", "may not fit", f"{gib_text(want)} with the margin is more than the "
                              f"{gib_text(free)} free; vLLM will refuse to start: lower n_ctx or n_parallel", "warning"))  # fmt: skip
    return MemoryEstimate(**{**est.to_dict(), "budget": max(0, free - margin.for_bytes(est.gpu_total))}), reasons
