"""One entry point for model facts: a .gguf file or a Hugging Face folder, cached."""

from __future__ import annotations

import glob
import os
import threading
from collections.abc import Callable

from ..errors import ModelError
from .facts import ModelFacts
from .gguf_info import read_gguf
from .hf_info import read_hf

_CACHE_MAX = 64
_cache: dict[tuple[str, tuple[tuple[str, int, int], ...]], ModelFacts] = {}
_lock = threading.Lock()


def _stamp(path: str) -> tuple[str, int, int]:
    st = os.stat(path)
    return (path, st.st_mtime_ns, st.st_size)


def _signature(path: str) -> tuple[tuple[str, int, int], ...]:
    """(path, mtime, size) of every file the facts come from: a change re-reads them."""
    if os.path.isdir(path):
        files = [os.path.join(path, "config.json"), *sorted(glob.glob(os.path.join(path, "*.safetensors")))]
        return tuple(_stamp(p) for p in files if os.path.isfile(p))
    return (_stamp(path),)


def inspect_model(path: str) -> ModelFacts:
    """Facts of the model at ``path`` (a .gguf file or a folder with config.json).

    Raises ModelError, saying what to fix, when the path is missing or not a model.
    """
    if not isinstance(path, str) or not path or "\0" in path:
        raise ModelError("No model path given", "pass a .gguf file or a Hugging Face folder")
    path = os.path.abspath(os.path.expanduser(path))
    if not os.path.exists(path):
        raise ModelError(f"Model not found: {path}", "check the path, or list models with %xgen models")
    if os.path.isdir(path):
        if not os.path.isfile(os.path.join(path, "config.json")):
            ggufs = sorted(glob.glob(os.path.join(path, "*.gguf")))
            hint = (
                f"it holds {len(ggufs)} .gguf file(s): pass one, e.g. {ggufs[0]}"
                if ggufs
                else "pass a .gguf file or a Hugging Face folder with config.json and *.safetensors"
            )
            raise ModelError(f"{path} is a folder with no model in it (no config.json)", hint)
        reader: Callable[[str], ModelFacts] = read_hf
    else:
        reader = read_gguf  # read_gguf says clearly when a file is not a GGUF
    try:
        key = (path, _signature(path))
    except OSError as exc:
        raise ModelError(f"Cannot read {path}: {exc.strerror or exc}") from None
    with _lock:
        hit = _cache.get(key)
    if hit is not None:
        return hit
    facts = reader(path)
    with _lock:
        if len(_cache) >= _CACHE_MAX:
            _cache.pop(next(iter(_cache)))
        _cache[key] = facts
    return facts


def clear_cache() -> None:
    with _lock:
        _cache.clear()
