"""Random-weight GGUFs of two more shapes for the placement benchmark (issue 13), Q4_0 throughout:

moe   a Qwen3-30B-A3B-shaped mixture of experts (qwen3moe: 48 blocks, 128 experts of which 8 are
      used, expert width 768, 2048 wide, 32 query / 4 KV heads of 128): ~16.8 GB. The routed
      experts are 3-D tensors written as raw Q4_0 rows.
swa   a Gemma-3-4B-shaped sliding-window model (gemma3: 34 blocks, window 1024 on 5 of every 6,
      2560 wide, 8 query / 4 KV heads of 256, vocabulary 262144, tied output): ~2.3 GB.

Tensors of one shape share one random buffer (see make_model.py), so writing needs ~0.5 GB.

    python benchmarks/gpu/make_shapes.py moe OUT.gguf
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from gguf import GGMLQuantizationType, GGUFWriter, LlamaFileType
from make_model import add_tokenizer, random_blocks

Q4 = GGMLQuantizationType.Q4_0


class _Writer:
    def __init__(self, out: Path, arch: str, name: str, vocab: int, ctx: int) -> None:
        self.rng = np.random.default_rng(0)
        self.pool: dict[tuple[int, ...], np.ndarray] = {}
        w = self.w = GGUFWriter(str(out), arch)
        w.add_name(name)
        w.add_context_length(ctx)
        w.add_vocab_size(vocab)
        w.add_file_type(LlamaFileType.MOSTLY_Q4_0)
        add_tokenizer(w, vocab)

    def q(self, name: str, *shape: int) -> None:
        """A Q4_0 tensor of ggml shape reversed: (..., rows, cols) as numpy sees it."""
        if shape not in self.pool:
            rows = int(np.prod(shape[:-1]))
            self.pool[shape] = random_blocks(self.rng, rows, shape[-1], "q4_0").reshape(*shape[:-1], -1)
        self.w.add_tensor(name, self.pool[shape], raw_dtype=Q4)

    def f32(self, name: str, n: int, value: float = 1.0) -> None:
        self.w.add_tensor(name, np.full(n, value, dtype=np.float32))

    def small(self, name: str, rows: int, cols: int) -> None:
        self.w.add_tensor(name, (self.rng.standard_normal((rows, cols)) * 0.02).astype(np.float32))

    def close(self) -> None:
        self.w.write_header_to_file()
        self.w.write_kv_data_to_file()
        self.w.write_tensors_to_file()
        self.w.close()


def write_moe(out: Path, layers: int = 48, embd: int = 2048, heads: int = 32, kv_heads: int = 4, head_dim: int = 128,
              experts: int = 128, used: int = 8, ff_exp: int = 768, vocab: int = 151936) -> None:  # fmt: skip
    x = _Writer(out, "qwen3moe", "random-qwen3-30b-a3b-shape", vocab, 40960)
    w = x.w
    w.add_block_count(layers)
    w.add_embedding_length(embd)
    w.add_feed_forward_length(6144)
    w.add_expert_feed_forward_length(ff_exp)
    w.add_expert_count(experts)
    w.add_expert_used_count(used)
    w.add_head_count(heads)
    w.add_head_count_kv(kv_heads)
    w.add_key_length(head_dim)
    w.add_value_length(head_dim)
    w.add_rope_freq_base(1000000.0)
    w.add_layer_norm_rms_eps(1e-6)
    x.q("token_embd.weight", vocab, embd)
    for i in range(layers):
        b = f"blk.{i}."
        x.f32(b + "attn_norm.weight", embd)
        x.q(b + "attn_q.weight", heads * head_dim, embd)
        x.q(b + "attn_k.weight", kv_heads * head_dim, embd)
        x.q(b + "attn_v.weight", kv_heads * head_dim, embd)
        x.q(b + "attn_output.weight", embd, heads * head_dim)
        x.f32(b + "attn_q_norm.weight", head_dim)
        x.f32(b + "attn_k_norm.weight", head_dim)
        x.f32(b + "ffn_norm.weight", embd)
        x.small(b + "ffn_gate_inp.weight", experts, embd)  # the router: f32, as converters keep it
        x.q(b + "ffn_gate_exps.weight", experts, ff_exp, embd)
        x.q(b + "ffn_up_exps.weight", experts, ff_exp, embd)
        x.q(b + "ffn_down_exps.weight", experts, embd, ff_exp)
    x.f32("output_norm.weight", embd)
    x.q("output.weight", vocab, embd)
    x.close()


def write_swa(out: Path, layers: int = 34, embd: int = 2560, heads: int = 8, kv_heads: int = 4, head_dim: int = 256,
              ff: int = 10240, vocab: int = 262144, window: int = 1024) -> None:  # fmt: skip
    x = _Writer(out, "gemma3", "random-gemma-3-4b-shape", vocab, 131072)
    w = x.w
    w.add_block_count(layers)
    w.add_embedding_length(embd)
    w.add_feed_forward_length(ff)
    w.add_head_count(heads)
    w.add_head_count_kv(kv_heads)
    w.add_key_length(head_dim)
    w.add_value_length(head_dim)
    w.add_sliding_window(window)
    w.add_rope_freq_base(1000000.0)
    w.add_layer_norm_rms_eps(1e-6)
    x.q("token_embd.weight", vocab, embd)  # tied: the output head reuses it
    for i in range(layers):
        b = f"blk.{i}."
        x.f32(b + "attn_norm.weight", embd, 0.0)  # gemma norms add 1 to the weight
        x.q(b + "attn_q.weight", heads * head_dim, embd)
        x.q(b + "attn_k.weight", kv_heads * head_dim, embd)
        x.q(b + "attn_v.weight", kv_heads * head_dim, embd)
        x.q(b + "attn_output.weight", embd, heads * head_dim)
        x.f32(b + "attn_q_norm.weight", head_dim, 0.0)
        x.f32(b + "attn_k_norm.weight", head_dim, 0.0)
        x.f32(b + "post_attention_norm.weight", embd, 0.0)
        x.f32(b + "ffn_norm.weight", embd, 0.0)
        x.q(b + "ffn_gate.weight", ff, embd)
        x.q(b + "ffn_up.weight", ff, embd)
        x.q(b + "ffn_down.weight", embd, ff)
        x.f32(b + "post_ffw_norm.weight", embd, 0.0)
    x.f32("output_norm.weight", embd, 0.0)
    x.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("shape", choices=("moe", "swa"))
    p.add_argument("out", type=Path)
    p.add_argument("--layers", type=int, default=0, help="fewer blocks (a quick local check)")
    a = p.parse_args()
    t0 = time.monotonic()
    kw = {"layers": a.layers} if a.layers else {}
    (write_moe if a.shape == "moe" else write_swa)(a.out, **kw)
    print(f"wrote {a.out} ({a.out.stat().st_size / 1e9:.2f} GB) in {time.monotonic() - t0:.1f} s")


if __name__ == "__main__":
    main()
