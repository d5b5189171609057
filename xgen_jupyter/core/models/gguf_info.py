"""Read a GGUF's header (metadata and tensor infos, never tensor data) into ModelFacts."""

from __future__ import annotations

import os
import re
from typing import Any

from gguf import GGUFValueType, LlamaFileType, PoolingType

from ..errors import ModelError
from .facts import ModelFacts
from .gguf_reader import FastGGUFReader, array_len, check_file, open_gguf
from .swa import swa_layout

_BLOCK = re.compile(r"^blk\.(\d+)\.")
#: Routed-expert tensors, as llama.cpp's --n-cpu-moe names them (shared experts, ``_shexp``, stay).
_EXPERTS = re.compile(r"\.ffn_(up|down|gate|gate_up)_(ch)?exps\b")
_SPLIT = re.compile(r"-(\d{5})-of-(\d{5})\.gguf$")
#: Architectures llama.cpp serves as embedding models whatever their pooling key says.
_EMBEDDING_ARCHS = {
    "bert",
    "nomic-bert",
    "nomic-bert-moe",
    "jina-bert-v2",
    "jina-bert-v3",
    "neo-bert",
    "gemma-embedding",
    "t5encoder",
    "modern-bert",
}


def _value(reader: FastGGUFReader, key: str) -> Any:
    """A scalar, a string, or a list for numeric arrays; None when absent or unreadable."""
    field = reader.fields.get(key)
    if field is None or not field.types:
        return None
    if field.types[0] == GGUFValueType.ARRAY:
        if field.types[-1] == GGUFValueType.STRING:
            return None  # string arrays are skipped by the fast reader
        return [v for v in field.contents()]
    return field.contents()


def _quantization(reader: FastGGUFReader) -> str:
    ftype = _value(reader, "general.file_type")
    if isinstance(ftype, int):
        try:
            return LlamaFileType(ftype).name.removeprefix("MOSTLY_").removeprefix("ALL_")
        except ValueError:
            pass
    # No (or unknown) file type: name the type holding most of the weight bytes.
    by_type: dict[str, int] = {}
    for t in reader.tensors:
        by_type[t.tensor_type.name] = by_type.get(t.tensor_type.name, 0) + int(t.n_bytes)
    return max(by_type, key=lambda k: by_type[k]) if by_type else ""


def _per_layer(value: Any, n_layer: int, default: int) -> tuple[int, tuple[int, ...]]:
    """(representative value, per-layer array or ()) for keys that may be arrays."""
    if isinstance(value, list) and value:
        arr = tuple(int(v) for v in value)
        if len(arr) != n_layer:
            arr = (arr + (arr[-1],) * n_layer)[:n_layer]
        return max(arr), (arr if len(set(arr)) > 1 else ())
    if isinstance(value, int):
        return value, ()
    return default, ()


def _split_tensors(path: str, reader: FastGGUFReader) -> tuple[list[Any], int]:
    """Tensor infos and total size over all parts of a split GGUF (llama.cpp's
    ``name-00001-of-00003.gguf``); just this file's for an ordinary one."""
    count = _value(reader, "split.count")
    m = _SPLIT.search(path)
    if not isinstance(count, int) or count <= 1:
        return list(reader.tensors), os.path.getsize(path)
    if m is None or int(m.group(1)) != 1:
        raise ModelError(f"{path} is one part of a {count}-part GGUF",
                         "pass the first part (the name ending -00001-of-...)")  # fmt: skip
    tensors, total = list(reader.tensors), os.path.getsize(path)
    for i in range(2, count + 1):
        part = path[: m.start()] + f"-{i:05d}-of-{count:05d}.gguf"
        if not os.path.isfile(part):
            raise ModelError(f"{path} is part 1 of {count}, but part {i} ({part}) is missing",
                             "download every part into the same folder")  # fmt: skip
        size = check_file(part)
        tensors += open_gguf(part, size).tensors
        total += size
    return tensors, total


def read_gguf(path: str) -> ModelFacts:
    """Facts of the GGUF at ``path``; ModelError (saying what to fix) if it is not one."""
    path = os.path.abspath(os.path.expanduser(path))
    size = check_file(path)
    reader = open_gguf(path, size)
    split_no, split_count = _value(reader, "split.no"), _value(reader, "split.count")
    if isinstance(split_no, int) and split_no > 0:
        raise ModelError(
            f"{path} is part {split_no + 1} of a {split_count}-part GGUF",
            "pass the first part (the name ending -00001-of-...)",
        )

    arch = _value(reader, "general.architecture")
    if not isinstance(arch, str) or not arch:
        raise ModelError(f"{path} has no general.architecture key", "re-convert it with a current llama.cpp")

    def key(k: str) -> Any:
        return _value(reader, f"{arch}.{k}")

    n_layer = int(key("block_count") or 0)
    n_embd = int(key("embedding_length") or 0)
    n_head, _ = _per_layer(key("attention.head_count"), n_layer, 0)
    n_head_kv, kv_layers = _per_layer(key("attention.head_count_kv"), n_layer, n_head)
    n_ff, _ = _per_layer(key("feed_forward_length"), n_layer, 0)
    if n_layer <= 0 or n_embd <= 0:
        raise ModelError(
            f"{path} lacks {arch}.block_count / {arch}.embedding_length",
            "this GGUF is incomplete or not a language model",
        )
    head_default = n_embd // n_head if n_head else 0
    head_k = int(key("attention.key_length") or head_default)
    head_v = int(key("attention.value_length") or head_default)

    layer_bytes = [0] * n_layer
    expert_bytes = [0] * n_layer
    expert_max = 0
    non_layer = 0
    all_tensors, size = _split_tensors(path, reader)
    tensors = {t.name: t for t in all_tensors}
    for t in all_tensors:
        m = _BLOCK.match(t.name)
        if m and int(m.group(1)) < n_layer:
            layer_bytes[int(m.group(1))] += int(t.n_bytes)
            if _EXPERTS.search(t.name):
                expert_bytes[int(m.group(1))] += int(t.n_bytes)
                expert_max = max(expert_max, int(t.n_bytes))
        else:
            non_layer += int(t.n_bytes)
    out = tensors.get("output.weight")
    emb = tensors.get("token_embd.weight")
    tied = out is None and emb is not None
    output_bytes = int(out.n_bytes) if out is not None else (int(emb.n_bytes) if emb is not None else 0)

    vocab = int(emb.shape[1]) if emb is not None and len(emb.shape) > 1 else 0
    if not vocab:
        tokens = reader.fields.get("tokenizer.ggml.tokens")
        vocab = array_len(tokens) if tokens is not None else int(key("vocab_size") or 0)

    window_raw = key("attention.sliding_window")
    window, swa = swa_layout(
        arch,
        n_layer,
        int(window_raw) if window_raw is not None else None,
        key("attention.sliding_window_pattern"),
    )

    template = _value(reader, "tokenizer.chat_template")
    pooling_raw = key("pooling_type")
    pooling = None
    if isinstance(pooling_raw, int):
        try:
            pooling = PoolingType(pooling_raw).name.lower()
        except ValueError:
            pooling = str(pooling_raw)
    is_embedding = arch in _EMBEDDING_ARCHS or (pooling is not None and pooling != "none")

    name = _value(reader, "general.name")
    return ModelFacts(
        path=path,
        format="gguf",
        name=name if isinstance(name, str) and name else os.path.basename(path).removesuffix(".gguf"),
        architecture=arch,
        n_layer=n_layer,
        n_embd=n_embd,
        n_head=n_head,
        n_head_kv=n_head_kv,
        n_head_kv_layers=kv_layers,
        n_ff=n_ff,
        head_dim_k=head_k,
        head_dim_v=head_v,
        n_ctx_train=int(key("context_length") or 0),
        file_size=size,
        sliding_window=window,
        swa_layers=swa,
        quantization=_quantization(reader),
        layer_bytes=tuple(layer_bytes),
        non_layer_bytes=non_layer,
        output_bytes=output_bytes,
        output_tied=tied,
        vocab_size=vocab,
        has_chat_template=isinstance(template, str) and bool(template.strip()),
        chat_template=template if isinstance(template, str) and template.strip() else None,
        is_embedding_model=is_embedding,
        pooling_type=pooling,
        expert_count=int(key("expert_count") or 0),
        expert_used_count=int(key("expert_used_count") or 0),
        layer_expert_bytes=tuple(expert_bytes) if any(expert_bytes) else (),
        expert_tensor_max=expert_max,
    )
