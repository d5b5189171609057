"""Write a Llama-3-8B-shaped GGUF with random weights, for speed and memory tests.

The weights are random quantized blocks with fixed small scales, written straight with
``gguf``: no float model is needed. ``--type q4_k_m`` writes llama.cpp's Q4_K_M tensor-type
mix (src/llama-quant.cpp: output Q6_K; attn_v and ffn_down Q6_K on the layers
``use_more_bits`` picks; everything else Q4_K), so the file has the same types and sizes as
``llama-quantize --allow-requantize Q8_0-file out Q4_K_M`` gives (checked on the GPU box).
Tensors of one shape share one random buffer (the layers are identical), so the writer holds
~1.5 GB, not the whole model. The tokenizer is a small SentencePiece-style vocabulary padded
to Llama-3's 128256 entries (the shape of the embedding and output matrices is what counts).

    python benchmarks/gpu/make_model.py OUT.gguf [--type q8_0|q4_0] [--layers 32 ...]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from gguf import GGMLQuantizationType, GGUFWriter, LlamaFileType, TokenType

# Block bytes, elements per block, and the byte offsets of f16 scales with the value each gets
# (weights of std ~0.02 whatever the random quants; a random f16 could be NaN).
BLOCKS: dict[str, tuple[int, int, tuple[tuple[int, float], ...]]] = {
    "q8_0": (34, 32, ((0, 2.7e-4),)),           # d; int8 quants (std ~74)
    "q4_0": (18, 32, ((0, 4.3e-3),)),           # d; nibbles - 8 (std ~4.6)
    "q4_k": (144, 256, ((0, 1e-4), (2, 7.5e-4))),  # d, dmin; 6-bit scales/mins, nibbles
    "q6_k": (210, 256, ((208, 1.5e-5),)),      # ql, qh, int8 scales, then d
}
GQ = {"q8_0": GGMLQuantizationType.Q8_0, "q4_0": GGMLQuantizationType.Q4_0,
      "q4_k": GGMLQuantizationType.Q4_K, "q6_k": GGMLQuantizationType.Q6_K}
FILE_TYPE = {"q8_0": LlamaFileType.MOSTLY_Q8_0, "q4_0": LlamaFileType.MOSTLY_Q4_0,
             "q4_k_m": LlamaFileType.MOSTLY_Q4_K_M}


def use_more_bits(i: int, n: int) -> bool:
    """llama-quant.cpp's choice of the layers that keep more bits in Q4_K_M."""
    return i < n // 8 or i >= 7 * n // 8 or (i - n // 8) % 3 == 2


def tensor_type(ftype: str, kind: str, i: int, n: int) -> str:
    if ftype != "q4_k_m":
        return ftype
    if kind == "output":
        return "q6_k"
    if kind in ("attn_v", "ffn_down") and use_more_bits(i, n):
        return "q6_k"
    return "q4_k"
CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


def tokenizer(vocab: int) -> tuple[list[str], list[float], list[int]]:
    toks = ["<unk>", "<s>", "</s>"]
    types = [TokenType.UNKNOWN, TokenType.CONTROL, TokenType.CONTROL]
    toks += [f"<0x{i:02X}>" for i in range(256)]
    types += [TokenType.BYTE] * 256
    chars = [chr(c) for c in range(33, 127)]
    words = ["\u2581" + c for c in chars] + chars + ["\u2581"]
    toks += words
    types += [TokenType.NORMAL] * len(words)
    n_fill = vocab - len(toks)
    toks += [f"<extra_{i}>" for i in range(n_fill)]
    types += [TokenType.NORMAL] * n_fill  # not USER_DEFINED: 127k special tokens slow every tokenization
    scores = [0.0] * 3 + [0.0] * 256 + [-float(i) for i in range(len(words))] + [-1e4] * n_fill
    return toks, scores, [int(t) for t in types]



def add_tokenizer(w: GGUFWriter, vocab: int) -> None:
    """The byte-level llama tokenizer and chat template every random test model carries."""
    toks, scores, types = tokenizer(vocab)
    w.add_tokenizer_model("llama")
    w.add_token_list(toks)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    w.add_add_bos_token(True)
    w.add_chat_template(CHAT_TEMPLATE)


def random_blocks(rng: np.random.Generator, rows: int, cols: int, qtype: str) -> np.ndarray:
    """rows x (cols/block) blocks of random quants with fixed f16 scales."""
    size, per, scales = BLOCKS[qtype]
    nblk = cols // per
    raw = np.frombuffer(rng.bytes(rows * nblk * size), dtype=np.uint8).reshape(rows, nblk, size).copy()
    for off, val in scales:
        raw[:, :, off:off + 2] = np.frombuffer(np.float16(val).tobytes(), dtype=np.uint8)
    return raw.reshape(rows, nblk * size)


def write(out: Path, *, layers: int, embd: int, ff: int, heads: int, kv_heads: int, vocab: int, ctx: int,
          qtype: str, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    head_dim = embd // heads
    w = GGUFWriter(str(out), "llama")
    w.add_name("random-llama-3-8b-shape")
    w.add_block_count(layers)
    w.add_context_length(ctx)
    w.add_embedding_length(embd)
    w.add_feed_forward_length(ff)
    w.add_head_count(heads)
    w.add_head_count_kv(kv_heads)
    w.add_rope_dimension_count(head_dim)
    w.add_rope_freq_base(500000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_vocab_size(vocab)
    w.add_file_type(FILE_TYPE[qtype])
    add_tokenizer(w, vocab)
    pool: dict[tuple[int, int, str], np.ndarray] = {}

    def q(name: str, rows: int, cols: int, i: int = 0) -> None:
        kind = name.split(".")[-2] if name.startswith("blk.") else name.split(".")[0]
        t = tensor_type(qtype, kind, i, layers)
        if (rows, cols, t) not in pool:
            pool[(rows, cols, t)] = random_blocks(rng, rows, cols, t)
        w.add_tensor(name, pool[(rows, cols, t)], raw_dtype=GQ[t])

    ones = np.ones(embd, dtype=np.float32)
    q("token_embd.weight", vocab, embd)
    for i in range(layers):
        w.add_tensor(f"blk.{i}.attn_norm.weight", ones)
        q(f"blk.{i}.attn_q.weight", embd, embd, i)
        q(f"blk.{i}.attn_k.weight", kv_heads * head_dim, embd, i)
        q(f"blk.{i}.attn_v.weight", kv_heads * head_dim, embd, i)
        q(f"blk.{i}.attn_output.weight", embd, embd, i)
        w.add_tensor(f"blk.{i}.ffn_norm.weight", ones)
        q(f"blk.{i}.ffn_gate.weight", ff, embd, i)
        q(f"blk.{i}.ffn_up.weight", ff, embd, i)
        q(f"blk.{i}.ffn_down.weight", embd, ff, i)
    w.add_tensor("output_norm.weight", ones)
    q("output.weight", vocab, embd)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path)
    p.add_argument("--type", choices=sorted(FILE_TYPE), default="q4_k_m")
    p.add_argument("--layers", type=int, default=32)
    p.add_argument("--embd", type=int, default=4096)
    p.add_argument("--ff", type=int, default=14336)
    p.add_argument("--heads", type=int, default=32)
    p.add_argument("--kv-heads", type=int, default=8)
    p.add_argument("--vocab", type=int, default=128256)
    p.add_argument("--ctx", type=int, default=8192)
    a = p.parse_args()
    t0 = time.monotonic()
    write(a.out, layers=a.layers, embd=a.embd, ff=a.ff, heads=a.heads, kv_heads=a.kv_heads, vocab=a.vocab,
          ctx=a.ctx, qtype=a.type)
    print(f"wrote {a.out} ({a.out.stat().st_size / 1e9:.2f} GB) in {time.monotonic() - t0:.1f} s")


if __name__ == "__main__":
    main()
