"""Command-line options for a load request, shared by the ``xgen`` CLI and the ``%xgen`` magics."""

from __future__ import annotations

import argparse
from typing import Any

from .adapters.registry import backend_ids

# (flag, request field, help). Values stay strings here; parse_request validates them so
# the CLI, the magics and the REST API give the same messages.
_OPTIONS: tuple[tuple[str, str, str], ...] = (
    ("--name", "name", "server name (default: from the model file name)"),
    ("--ctx", "n_ctx", "context size in tokens"),
    ("--gpu-layers", "n_gpu_layers", "layers to offload to the GPU (-1 = all)"),
    ("--parallel", "n_parallel", "concurrent request slots"),
    ("--threads", "n_threads", "CPU threads"),
    ("--batch", "n_batch", "logical batch size"),
    ("--ubatch", "n_ubatch", "physical batch size"),
    ("--main-gpu", "main_gpu", "GPU index to use"),
    ("--split-mode", "split_mode", "none | layer | row | tensor (default: one GPU, split only when none holds it)"),
    ("--tensor-split", "tensor_split", "share per GPU for a split, e.g. 3,1 (default: by free memory)"),
    ("--flash-attn", "flash_attn", "auto | on | off"),
    ("--cache-type-k", "cache_type_k", "KV cache type for K (f16, q8_0, ...)"),
    ("--cache-type-v", "cache_type_v", "KV cache type for V"),
    ("--chat-format", "chat_format", "chat format when the model has no template (gemma, chatml, llama3, ...)"),
    ("--tensor-parallel", "tensor_parallel_size", "vLLM tensor-parallel size"),
    ("--max-model-len", "max_model_len", "vLLM maximum model length"),
    ("--dtype", "dtype", "vLLM dtype"),
)


def add_request_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="a .gguf file, a Hugging Face folder, a name in the model dirs, or 'default'")
    parser.add_argument("--backend", default="auto", help=f"auto or one of: {', '.join(backend_ids())}")
    parser.add_argument("--embedding", action="store_true", help="serve embeddings instead of chat")
    parser.add_argument("--rerank", action="store_true", help="serve /v1/rerank (a reranker) instead of chat")
    parser.add_argument("--mlock", dest="mlock", action="store_true", default=None, help="lock the model in RAM")
    parser.add_argument("--no-mlock", dest="mlock", action="store_false", help="do not lock the model in RAM")
    for flag, field, text in _OPTIONS:
        parser.add_argument(flag, dest=field, default=None, metavar="N" if field.startswith("n_") else "X", help=text)


def request_from_args(ns: argparse.Namespace) -> dict[str, Any]:
    data: dict[str, Any] = {"model": ns.model, "backend": ns.backend}
    if ns.embedding:
        data["server_type"] = "embedding"
    if getattr(ns, "rerank", False):
        data["server_type"] = "rerank"
    if ns.mlock is not None:
        data["mlock"] = ns.mlock
    for _, field, _ in _OPTIONS:
        value = getattr(ns, field, None)
        if value is not None:
            data[field] = value
    return data
