"""Read a Hugging Face model folder (config.json + *.safetensors headers) into ModelFacts.

Tensor sizes come from each safetensors header (8-byte little-endian length, then JSON
with ``data_offsets``), so no tensor is loaded and torch is not needed.
"""

from __future__ import annotations

import glob
import json
import math
import os
import re
from typing import Any

from ..errors import ModelError
from .facts import ModelFacts
from .swa import swa_layout

_LAYER = re.compile(r"(?:^|\.)layers\.(\d+)\.")
#: A header larger than this is not a real safetensors header (the format caps it at 100 MB).
_MAX_HEADER = 100 * 1024 * 1024
#: HF model_type -> llama.cpp arch name, where they differ, for the SWA rules.
_HF_TO_GGUF_ARCH = {"gemma3_text": "gemma3", "gpt_oss": "gpt-oss", "llama4_text": "llama4"}


def _read_json(path: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except PermissionError:
        raise ModelError(f"Permission denied reading {path}", "make the file readable by this user") from None
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path} is not valid JSON ({exc})", "fix or re-download the file") from None
    if not isinstance(data, dict):
        raise ModelError(f"{path} does not hold a JSON object", "fix or re-download the file")
    return data


def safetensors_header(path: str) -> dict[str, Any]:
    """The JSON header of one .safetensors file (tensor name -> dtype, shape, data_offsets)."""
    try:
        with open(path, "rb") as f:
            raw = f.read(8)
            n = int.from_bytes(raw, "little") if len(raw) == 8 else -1
            if n <= 1 or n > _MAX_HEADER:
                raise ModelError(
                    f"{path} is not a safetensors file (bad header length)", "re-download the weights"
                )
            blob = f.read(n)
        size = os.path.getsize(path)
    except PermissionError:
        raise ModelError(f"Permission denied reading {path}", "make the file readable by this user") from None
    except OSError as exc:
        raise ModelError(f"Cannot read {path}: {exc.strerror or exc}") from None
    try:
        header = json.loads(blob)
    except ValueError:
        raise ModelError(
            f"{path} has a corrupt or truncated safetensors header", "re-download the weights"
        ) from None
    if not isinstance(header, dict):
        raise ModelError(f"{path} has a corrupt safetensors header", "re-download the weights")
    try:
        end = max((int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"), default=0)
    except (KeyError, TypeError, IndexError, ValueError):
        raise ModelError(f"{path} has a corrupt safetensors header", "re-download the weights") from None
    if 8 + n + end > size:
        raise ModelError(
            f"{path} is truncated: its header describes {8 + n + end:,} bytes but the file has {size:,}",
            "the download is incomplete; fetch it again",
        )
    return header


def _config(folder: str) -> dict[str, Any]:
    cfg_path = os.path.join(folder, "config.json")
    if not os.path.isfile(cfg_path):
        raise ModelError(
            f"{folder} has no config.json",
            "pass a Hugging Face model folder (config.json + *.safetensors) or a .gguf file",
        )
    cfg = _read_json(cfg_path)
    # Multimodal configs (Gemma 3, Llava, ...) keep the language model under text_config.
    text = cfg.get("text_config")
    if isinstance(text, dict):
        cfg = {**cfg, **text}
    return cfg


def _chat_template(folder: str) -> str | None:
    jinja = os.path.join(folder, "chat_template.jinja")
    if os.path.isfile(jinja):
        with open(jinja, encoding="utf-8", errors="replace") as f:
            return f.read() or None
    tok_cfg = os.path.join(folder, "tokenizer_config.json")
    if os.path.isfile(tok_cfg):
        tmpl = _read_json(tok_cfg).get("chat_template")
        if isinstance(tmpl, list):  # named templates: [{"name": ..., "template": ...}]
            tmpl = next((t.get("template") for t in tmpl if isinstance(t, dict)), None)
        return tmpl if isinstance(tmpl, str) and tmpl else None
    return None


def _pooling(folder: str) -> str | None:
    """Pooling of a sentence-transformers folder (1_Pooling/config.json), if it is one."""
    cfg_path = os.path.join(folder, "1_Pooling", "config.json")
    if not os.path.isfile(cfg_path):
        return None
    cfg = _read_json(cfg_path)
    for key, name in (
        ("pooling_mode_cls_token", "cls"),
        ("pooling_mode_lasttoken", "last"),
        ("pooling_mode_mean_tokens", "mean"),
    ):
        if cfg.get(key):
            return name
    return "mean"


def _swa(cfg: dict[str, Any], arch: str, n_layer: int) -> tuple[int | None, tuple[bool, ...]]:
    window = cfg.get("sliding_window")
    if not isinstance(window, int) or window <= 0 or cfg.get("use_sliding_window") is False:
        return None, ()
    types = cfg.get("layer_types")  # transformers >= 4.53 lists each layer's attention
    if isinstance(types, list) and len(types) == n_layer:
        flags = tuple(t == "sliding_attention" for t in types)
        return (window, flags) if any(flags) else (None, ())
    pattern = cfg.get("sliding_window_pattern")
    if arch in ("mistral", "qwen2", "phi3", "starcoder2") and pattern is None:
        return window, (True,) * n_layer  # one window on every layer
    gguf_arch = _HF_TO_GGUF_ARCH.get(arch, arch)
    return swa_layout(gguf_arch, n_layer, window, pattern if isinstance(pattern, int) else None)


def read_hf(folder: str) -> ModelFacts:
    """Facts of the Hugging Face model folder; ModelError (saying what to fix) if it is not one."""
    folder = os.path.abspath(os.path.expanduser(folder))
    if not os.path.isdir(folder):
        raise ModelError(f"Model folder not found: {folder}", "check the path")
    cfg = _config(folder)
    files = sorted(glob.glob(os.path.join(folder, "*.safetensors")))
    if not files:
        hint = (
            "convert .bin weights to safetensors"
            if glob.glob(os.path.join(folder, "*.bin"))
            else "download the *.safetensors weights into it"
        )
        raise ModelError(f"{folder} has config.json but no *.safetensors weights", hint)

    n_layer = int(cfg.get("num_hidden_layers") or cfg.get("n_layer") or 0)
    n_embd = int(cfg.get("hidden_size") or cfg.get("n_embd") or 0)
    n_head = int(cfg.get("num_attention_heads") or cfg.get("n_head") or 0)
    if n_layer <= 0 or n_embd <= 0 or n_head <= 0:
        raise ModelError(
            f"{folder}/config.json lacks num_hidden_layers, hidden_size or num_attention_heads",
            "this does not look like a transformer language model config",
        )
    n_head_kv = int(cfg.get("num_key_value_heads") or n_head)
    head_dim = int(cfg.get("head_dim") or n_embd // n_head)

    layer_bytes = [0] * n_layer
    non_layer = n_params = output_bytes = embed_bytes = 0
    for path in files:
        for name, info in safetensors_header(path).items():
            if name == "__metadata__":
                continue
            start, end = info["data_offsets"]
            nbytes = int(end) - int(start)
            n_params += math.prod(int(d) for d in info.get("shape", []))
            m = _LAYER.search(name)
            if m and int(m.group(1)) < n_layer:
                layer_bytes[int(m.group(1))] += nbytes
            else:
                non_layer += nbytes
            if name.endswith("lm_head.weight"):
                output_bytes = nbytes
            elif name.endswith("embed_tokens.weight"):
                embed_bytes = nbytes
    tied = output_bytes == 0 and embed_bytes > 0
    arch = str(cfg.get("model_type") or "unknown")
    window, swa = _swa(cfg, arch, n_layer)
    template = _chat_template(folder)
    dtype = cfg.get("torch_dtype") or cfg.get("dtype")
    archs = cfg.get("architectures") or []
    pooling = _pooling(folder)
    is_embedding = (
        pooling is not None
        or os.path.isfile(os.path.join(folder, "modules.json"))
        or any(isinstance(a, str) and (a.endswith("Model") or "Embedding" in a) for a in archs)
    )
    return ModelFacts(
        path=folder,
        format="hf",
        name=os.path.basename(folder.rstrip(os.sep)),
        architecture=arch,
        n_layer=n_layer,
        n_embd=n_embd,
        n_ff=int(cfg.get("intermediate_size") or cfg.get("n_inner") or 0),
        n_head=n_head,
        n_head_kv=n_head_kv,
        head_dim_k=head_dim,
        head_dim_v=head_dim,
        n_ctx_train=int(cfg.get("max_position_embeddings") or 0),
        file_size=sum(os.path.getsize(p) for p in files),
        sliding_window=window,
        swa_layers=swa,
        quantization=str(dtype or ""),
        layer_bytes=tuple(layer_bytes),
        non_layer_bytes=non_layer,
        output_bytes=output_bytes or embed_bytes,
        output_tied=tied,
        vocab_size=int(cfg.get("vocab_size") or 0),
        has_chat_template=template is not None,
        chat_template=template,
        is_embedding_model=is_embedding,
        pooling_type=pooling or ("mean" if is_embedding else None),
        dtype=str(dtype) if dtype else None,
        n_params=n_params,
    )
