"""Which layers use sliding-window attention, following llama.cpp's rules.

llama.cpp (src/llama-hparams.cpp, ``llama_hparams::set_swa_pattern``) marks layer ``il``
as SWA when ``n_pattern == 0 or il % n_pattern < n_pattern - 1`` (or, "dense first",
``il % n_pattern != 0``). Each architecture's loader picks the period; a GGUF key
``<arch>.attention.sliding_window_pattern`` overrides it when present, either as a
period (int) or as one bool per layer.
"""

from __future__ import annotations

from collections.abc import Sequence

#: arch -> (period, dense_first, default window when the GGUF has none).
#: From the arch loaders in llama.cpp's src/llama-model.cpp / src/models/*.cpp.
_ARCH_PATTERNS: dict[str, tuple[int, bool, int | None]] = {
    "gemma2": (2, False, 4096),  # even layers SWA, window defaults to 4096
    "gemma3": (6, False, None),  # 5 SWA : 1 full
    "gemma3n": (5, False, None),
    "gemma-embedding": (6, False, None),
    "cohere2": (4, False, None),  # 3 SWA : 1 full
    "gpt-oss": (2, False, None),  # LLM_ARCH_OPENAI_MOE: even layers SWA
    "llama4": (4, False, 8192),  # chunked attention, 3 chunked : 1 full, chunk 8192
    "afmoe": (4, False, None),
    "exaone4": (4, False, None),  # only the 32B (64 layers) has a window
    "smallthinker": (4, False, None),
}


def pattern_layers(n_layer: int, n_pattern: int, dense_first: bool = False) -> tuple[bool, ...]:
    """llama.cpp's ``set_swa_pattern``: True marks a sliding-window layer."""
    if n_pattern == 0:
        return (True,) * n_layer
    if dense_first:
        return tuple(il % n_pattern != 0 for il in range(n_layer))
    return tuple(il % n_pattern < n_pattern - 1 for il in range(n_layer))


def swa_layout(
    arch: str,
    n_layer: int,
    sliding_window: int | None,
    pattern_meta: int | Sequence[bool] | Sequence[int] | None = None,
) -> tuple[int | None, tuple[bool, ...]]:
    """Return ``(window, per-layer SWA flags)``; ``(None, ())`` when no layer slides.

    An architecture we do not know with a window but no pattern is treated as all
    full attention: that over-estimates KV memory, the safe direction for a fit.
    """
    known = _ARCH_PATTERNS.get(arch)
    window = sliding_window
    if window is None and known is not None:
        window = known[2]
    if arch == "llama4" and sliding_window == 0:
        return None, ()  # llama.cpp: an explicit 0 turns chunked attention off
    if arch == "exaone4":
        if n_layer != 64:
            return None, ()  # llama.cpp enables SWA for the 32B (64 layers) only
        window = sliding_window or 4096
    if not window or window <= 0:
        return None, ()
    if isinstance(pattern_meta, Sequence) and not isinstance(pattern_meta, (str, bytes)):
        flags = tuple(bool(x) for x in pattern_meta)
        if len(flags) == n_layer:
            return (window, flags) if any(flags) else (None, ())
        pattern_meta = None  # malformed array: fall back to the arch rule
    if isinstance(pattern_meta, int) and not isinstance(pattern_meta, bool):
        flags = pattern_layers(n_layer, pattern_meta, known[1] if known else False)
    elif known is not None:
        flags = pattern_layers(n_layer, known[0], known[1])
    else:
        return None, ()
    return (window, flags) if any(flags) else (None, ())
