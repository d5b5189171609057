"""The load request: what the user asked for, validated before anything runs."""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import asdict, dataclass, fields
from typing import Any

from ..errors import RequestError

SERVER_TYPES = ("llm", "embedding", "rerank")
RESTART_POLICIES = ("never", "on-crash")
MAX_IDLE_TTL = 365 * 24 * 3600.0
SPLIT_MODES = ("none", "layer", "row", "tensor")
FLASH_ATTN = ("auto", "on", "off")
KV_TYPES = ("f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "iq4_nl", "q5_0", "q5_1")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
MAX_CTX = 1 << 21  # 2M tokens: beyond any model trained today


@dataclass(frozen=True)
class LoadRequest:
    """Everything but ``model`` is optional; the planner fills what is left ``None``."""

    model: str
    name: str | None = None
    server_type: str = "llm"
    backend: str = "auto"
    n_ctx: int | None = None
    n_batch: int | None = None
    n_ubatch: int | None = None
    n_threads: int | None = None
    n_parallel: int | None = None
    n_gpu_layers: int | None = None
    main_gpu: int | None = None
    split_mode: str | None = None
    tensor_split: tuple[float, ...] | None = None
    flash_attn: str | None = None
    mlock: bool | None = None
    cont_batching: bool | None = None
    jinja: bool | None = None
    cache_type_k: str | None = None
    cache_type_v: str | None = None
    chat_format: str | None = None
    # vLLM
    tensor_parallel_size: int | None = None
    gpu_memory_utilization: float | None = None
    max_model_len: int | None = None
    dtype: str | None = None
    # Lifecycle on a shared box (not engine settings): unload after this many idle seconds
    # (0: never), exempt from idle unload, restart on crash, and how often.
    idle_ttl: float | None = None
    pinned: bool | None = None
    restart: str | None = None
    max_restarts: int | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if self.tensor_split is not None:
            d["tensor_split"] = list(self.tensor_split)
        return d

    def user_set(self) -> set[str]:
        """Fields the user gave explicitly (a rule never overrides these)."""
        defaults = {"server_type": "llm", "backend": "auto"}
        return {
            f.name
            for f in fields(self)
            if f.name != "model" and getattr(self, f.name) != defaults.get(f.name)
        }


_INT_FIELDS = {
    "n_ctx": (1, MAX_CTX),
    "n_batch": (1, 1 << 16),
    "n_ubatch": (1, 1 << 16),
    "n_threads": (1, 1024),
    "n_parallel": (1, 256),
    "n_gpu_layers": (-1, 10_000),
    "main_gpu": (0, 63),
    "tensor_parallel_size": (1, 64),
    "max_model_len": (1, MAX_CTX),
    "max_restarts": (0, 100),
}
_BOOL_FIELDS = ("mlock", "cont_batching", "jinja", "pinned")
_CHOICES = {
    "server_type": SERVER_TYPES,
    "split_mode": SPLIT_MODES,
    "flash_attn": FLASH_ATTN,
    "cache_type_k": KV_TYPES,
    "cache_type_v": KV_TYPES,
    "restart": RESTART_POLICIES,
}
_STR_FIELDS = ("model", "name", "chat_format", "dtype", "backend")
# Aliases the UI and magics use for brevity.
_ALIASES = {"kind": "server_type", "ctx": "n_ctx", "gpu_layers": "n_gpu_layers", "parallel": "n_parallel"}


def _as_int(key: str, value: Any) -> int:
    if isinstance(value, bool):
        raise RequestError(f"{key} must be a whole number, not {value!r}")
    if isinstance(value, int):
        out = value
    elif isinstance(value, float) and value.is_integer():
        out = int(value)
    elif isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
        out = int(value.strip())
    else:
        raise RequestError(f"{key} must be a whole number, not {value!r}")
    lo, hi = _INT_FIELDS[key]
    if not lo <= out <= hi:
        raise RequestError(f"{key}={out} is out of range", f"use a value from {lo} to {hi}")
    return out


def _as_bool(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "1", "yes", "on", "false", "0", "no", "off"):
        return value.lower() in ("true", "1", "yes", "on")
    raise RequestError(f"{key} must be true or false, not {value!r}")


def parse_request(data: dict[str, Any], backends: Collection[str] | None = None) -> LoadRequest:
    """Validate a JSON-like dict into a :class:`LoadRequest`, or raise :class:`RequestError`.

    ``backends``: the known backend ids (``adapters.registry.backend_ids()``; the ids are defined
    there, not in this tier). Left out, any id passes here and the planner refuses an unknown one."""
    if not isinstance(data, dict):
        raise RequestError("a load request must be a JSON object")
    data = {_ALIASES.get(k, k): v for k, v in data.items()}
    known = {f.name for f in fields(LoadRequest)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise RequestError(f"unknown field(s): {', '.join(unknown)}", f"known fields: {', '.join(sorted(known))}")
    out: dict[str, Any] = {}
    for key, value in data.items():
        if value is None:
            continue
        if key in _INT_FIELDS:
            out[key] = _as_int(key, value)
        elif key in _BOOL_FIELDS:
            out[key] = _as_bool(key, value)
        elif key in _CHOICES:
            if not isinstance(value, str) or value not in _CHOICES[key]:
                raise RequestError(f"{key}={value!r} is not one of: {', '.join(_CHOICES[key])}")
            out[key] = value
        elif key in _STR_FIELDS:
            if not isinstance(value, str) or not value.strip():
                raise RequestError(f"{key} must be a non-empty string")
            out[key] = value.strip()
        elif key == "gpu_memory_utilization":
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
                raise RequestError("gpu_memory_utilization must be a number in (0, 1]")
            out[key] = float(value)
        elif key == "idle_ttl":
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= MAX_IDLE_TTL:
                raise RequestError("idle_ttl must be a number of seconds from 0 (never) to one year")
            out[key] = float(value)
        elif key == "tensor_split":
            if isinstance(value, str):  # "3,1" from the CLI and the magics
                try:
                    value = [float(x) for x in value.split(",")]
                except ValueError:
                    raise RequestError(
                        f"tensor_split {value!r} is not a list of numbers", "e.g. 3,1 (one share per GPU)"
                    ) from None
            if not isinstance(value, (list, tuple)) or not value or not all(
                isinstance(x, (int, float)) and not isinstance(x, bool) and x >= 0 for x in value
            ):
                raise RequestError("tensor_split must be a list of non-negative numbers, e.g. [3, 1]")
            out[key] = tuple(float(x) for x in value)
    choices = ("auto", *backends) if backends is not None else None
    if choices is not None and out.get("backend", "auto") not in choices:
        raise RequestError(f"backend={out['backend']!r} is not one of: {', '.join(choices)}")
    if "model" not in out:
        raise RequestError("model is required", "give a .gguf path, a Hugging Face folder, or 'default'")
    name = out.get("name")
    if name is not None and not NAME_RE.match(name):
        raise RequestError(
            f"server name {name!r} is not allowed",
            "use letters, digits, '.', '_' or '-' (at most 64, starting with a letter or digit)",
        )
    return LoadRequest(**out)
