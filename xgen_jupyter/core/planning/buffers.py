"""The KV cache and the compute graph of a llama.cpp engine, in bytes (memory.py's terms).

Split out of memory.py (which adds weights, per-device overheads and the fit); memory.py
re-exports every name here.
"""

from __future__ import annotations

from ..errors import RequestError
from ..models.facts import ModelFacts

#: llama.cpp pads the KV size up to a multiple of 256 (older builds: 32 without flash
#: attention); we use 256, the larger, so the estimate never falls short.
CTX_PAD = 256

#: Bytes per KV element as (bytes per block, elements per block), from ggml's type sizes.
KV_TYPE_SIZE: dict[str, tuple[int, int]] = {
    "f32": (4, 1), "f16": (2, 1), "bf16": (2, 1),
    "q8_0": (34, 32), "q4_0": (18, 32), "q4_1": (20, 32),
    "q5_0": (22, 32), "q5_1": (24, 32), "iq4_nl": (18, 32),
}  # fmt: skip

#: Extra f32 activations of n_ubatch rows alive beside the attention scores (Q, K/V views,
#: KQV, projection). Measured on CPU here (gemma-3-270m, see tests): ~5 rows of
#: n_head*head_dim; 6 keeps a margin.
ATTN_ROWS = 6
#: f32 rows of n_embd alive beside the logits (the normed hidden state and its input).
OUT_ROWS = 2
#: The feed-forward moment: gate, up and their product (3 rows of n_ff) plus FFN_EMBD_ROWS
#: rows of n_embd (input, norm, residuals). Measured on an H200 (Llama-3-8B shape, ubatch 512,
#: flash attention): 120.0 MiB, where this gives 124; attention alone gave 52 (the ~70 MiB
#: under-count seen on the H100 before).
FFN_EMBD_ROWS = 5


def _pad(n: int, to: int = CTX_PAD) -> int:
    return -(-n // to) * to


def type_bytes(n_elements: int, cache_type: str) -> int:
    """Bytes of ``n_elements`` values of a KV cache type (whole blocks, as ggml stores rows)."""
    try:
        size, block = KV_TYPE_SIZE[cache_type.lower()]
    except KeyError:
        raise RequestError(
            f"Unknown KV cache type {cache_type!r}", f"use one of: {', '.join(KV_TYPE_SIZE)}"
        ) from None
    return -(-n_elements // block) * size


def layer_kv_bytes_per_cell(
    facts: ModelFacts, il: int, cache_type_k: str = "f16", cache_type_v: str = "f16"
) -> int:
    n_kv = facts.kv_heads(il)
    return type_bytes(n_kv * facts.head_dim_k, cache_type_k) + type_bytes(
        n_kv * facts.head_dim_v, cache_type_v
    )


def kv_bytes_per_token(facts: ModelFacts, cache_type_k: str = "f16", cache_type_v: str = "f16") -> int:
    """KV bytes one token adds across all layers, as if none slid (a sanity figure:
    Llama-3-8B in f16 gives 128 KiB)."""
    return sum(layer_kv_bytes_per_cell(facts, il, cache_type_k, cache_type_v) for il in range(facts.n_layer))


def kv_cells(
    facts: ModelFacts, il: int, n_ctx: int, n_parallel: int, n_ubatch: int, swa_full: bool = False
) -> int:
    """KV cells of layer ``il``.

    Full attention: the padded ``n_ctx``. Sliding window: llama.cpp's iSWA cache
    (llama_kv_cache_iswa) keeps ``min(n_ctx, n_swa * n_seq + n_ubatch)`` cells, padded: one
    window per sequence plus room for the ubatch being written. That is the unified-KV
    size, which llama-server uses with several slots; a non-unified cache keeps
    ``n_seq * (n_swa + n_ubatch)``, a little more. Checked here with llama.cpp
    (llama-cpp-python 0.3.36): gemma-3-270m at -c 4096 gets 4096 and 1024 cells.
    ``--swa-full`` gives SWA layers the whole context.
    """
    ctx = _pad(n_ctx)
    if swa_full or not facts.swa_layers or not facts.swa_layers[il] or not facts.sliding_window:
        return ctx
    return min(ctx, _pad(facts.sliding_window * max(1, n_parallel) + n_ubatch))


def compute_bytes(
    facts: ModelFacts,
    n_ctx: int,
    n_parallel: int,
    n_ubatch: int,
    flash_attn: bool,
    n_outputs: int | None = None,
    per_seq_attention: bool = False,
) -> int:
    """Peak of llama.cpp's compute graph for one ubatch; the allocator reuses memory
    between layers, so the peak is the largest of three moments:

    * output: logits ``n_ubatch * n_vocab * 4`` plus OUT_ROWS f32 rows of n_embd;
    * attention: without flash attention the scores ``n_ubatch * n_kv * n_head * 4`` and the
      f32 mask ``n_ubatch * n_kv * 4``; with it only an f16 mask ``n_ubatch * n_kv * 2``;
      plus ATTN_ROWS f32 rows of ``n_head * head_dim``. ``n_kv`` is the largest layer's cells;
    * feed-forward: 3 f32 rows of ``n_ff`` and FFN_EMBD_ROWS of ``n_embd``.

    ``n_outputs`` is how many logit rows the engine reserves: llama-cpp-python reserves a
    whole ubatch (the default, None), llama-server one per slot. With ``per_seq_attention``
    (llama-server with an explicit ``--parallel N``: a non-unified cache) the graph attends
    over one sequence's ``n_ctx / N`` cells, not the whole context (measured on an H100:
    572 MiB where the whole context would give 2 GiB).

    Checked on CPU here: gemma-3-270m, ubatch 512, -c 4096 -> 514.5 MiB measured (logits
    dominate); -c 131072 without flash attention -> 1291.8 MiB measured.
    """
    out, attn = compute_parts(facts, n_ctx, n_parallel, n_ubatch, flash_attn, n_outputs, per_seq_attention)
    return max(out, attn)


def compute_parts(
    facts: ModelFacts,
    n_ctx: int,
    n_parallel: int,
    n_ubatch: int,
    flash_attn: bool,
    n_outputs: int | None = None,
    per_seq_attention: bool = False,
) -> tuple[int, int]:
    """The two moments of :func:`compute_bytes`, (output, attention): a split across GPUs puts
    the attention peak on every card with blocks and the output peak on the head's card."""
    ub = n_ubatch
    rows_out = ub if n_outputs is None else min(ub, max(1, n_outputs))
    out = rows_out * facts.vocab_size * 4 + OUT_ROWS * ub * facts.n_embd * 4
    if per_seq_attention and n_parallel > 1:
        n_ctx, n_parallel = max(1, n_ctx // n_parallel), 1
    n_kv = max((kv_cells(facts, il, n_ctx, n_parallel, ub) for il in range(facts.n_layer)), default=0)
    n_kv_swa = min((kv_cells(facts, il, n_ctx, n_parallel, ub) for il in range(facts.n_layer)), default=0)
    rows = ATTN_ROWS * ub * facts.n_head * max(facts.head_dim_k, facts.head_dim_v) * 4
    if flash_attn:
        attn = ub * (n_kv + (n_kv_swa if facts.swa_layers else 0)) * 2 + rows
    else:
        attn = ub * n_kv * facts.n_head * 4 + ub * (n_kv + (n_kv_swa if facts.swa_layers else 0)) * 4 + rows
    ffn = ub * (3 * facts.n_ff + FFN_EMBD_ROWS * facts.n_embd) * 4 if facts.n_ff else 0
    return out, max(attn, ffn)
