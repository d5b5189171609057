"""GGUF inspection: the real default model, small GGUFs written with gguf.GGUFWriter, bad files."""

from __future__ import annotations

import os
import time
from pathlib import Path

import gguf
import pytest

from tests.model_files import write_gguf
from xgen_jupyter.core.errors import ModelError
from xgen_jupyter.core.models.gguf_info import read_gguf
from xgen_jupyter.core.models.gguf_reader import FastGGUFReader


# -- the real default model ----------------------------------------------------------------------
def test_gemma_facts(default_model: str) -> None:
    t0 = time.monotonic()
    f = read_gguf(default_model)
    elapsed = time.monotonic() - t0
    assert f.format == "gguf" and f.architecture == "gemma3" and f.name == "Gemma 3 270m"
    assert (f.n_layer, f.n_embd, f.n_head, f.n_head_kv) == (18, 640, 4, 1)
    assert (f.head_dim_k, f.head_dim_v) == (256, 256)
    assert f.n_ctx_train == 32768 and f.vocab_size == 262144
    assert f.sliding_window == 512
    # llama.cpp gemma3: set_swa_pattern(6) -> il % 6 < 5 slides; layers 5, 11, 17 are global.
    assert f.swa_layers == tuple(il % 6 < 5 for il in range(18))
    assert f.n_swa_layers == 15
    assert not f.has_chat_template and f.chat_template is None
    assert f.quantization == "Q4_K_M"
    assert not f.is_embedding_model and f.pooling_type is None
    # Tied head: no output.weight; token_embd is Q8_0 640 x 262144 = 167,772,160 values
    # in blocks of 32 values / 34 bytes -> 178,257,920 bytes.
    assert f.output_tied and f.output_bytes == 178_257_920
    # non-layer = token_embd + output_norm (640 f32 = 2,560 bytes)
    assert f.non_layer_bytes == 178_257_920 + 2_560
    # blk.0 by hand (values/block -> bytes/block): attn_q 640x1024 Q5_0 450,560; attn_k
    # 640x256 Q5_0 112,640; attn_v 640x256 Q8_0 174,080; attn_output 1024x640 Q4_K 368,640;
    # ffn_gate, ffn_up 640x2048 Q5_0 901,120 each; ffn_down 2048x640 Q6_K 1,075,200;
    # norms f32 (640*4 x4 + 256*4 x2) 12,288 -> 3,995,648.
    assert len(f.layer_bytes) == 18 and f.layer_bytes[0] == 3_995_648
    assert f.file_size == os.path.getsize(default_model)
    assert 0 < f.file_size - f.weight_bytes < 8 * 1024**2  # the rest is header + vocabulary
    # The stock GGUFReader needs ~12 s here for the 262k-token vocabulary; ours must not.
    assert elapsed < 5, f"read_gguf took {elapsed:.1f}s"


# -- small files written with GGUFWriter -------------------------------------------------------------
def test_fast_reader_matches_stock_reader(tmp_path: Path) -> None:
    p = write_gguf(tmp_path / "m.gguf", n_head_kv=[2, 1, 2, 2], chat_template="{{ x }}", sliding_window=64,
                   swa_pattern=[True, False, True, False])  # fmt: skip
    fast, stock = FastGGUFReader(str(p)), gguf.GGUFReader(str(p))
    assert list(fast.fields) == list(stock.fields)
    for name, field in stock.fields.items():
        if field.types[:1] == [gguf.GGUFValueType.ARRAY] and field.types[-1] == gguf.GGUFValueType.STRING:
            continue  # contents skipped on purpose
        assert fast.fields[name].contents() == field.contents(), name
    assert [(t.name, t.n_bytes, t.data_offset) for t in fast.tensors] == [
        (t.name, t.n_bytes, t.data_offset) for t in stock.tensors
    ]


def test_llama_shape_and_sizes(tmp_path: Path) -> None:
    f = read_gguf(str(write_gguf(tmp_path / "m.gguf", n_layer=3, n_embd=64, n_head=4, n_head_kv=2)))
    assert (f.architecture, f.n_layer, f.n_embd, f.n_head, f.n_head_kv) == ("llama", 3, 64, 4, 2)
    assert (f.head_dim_k, f.head_dim_v) == (16, 16)  # default n_embd / n_head
    assert f.swa_layers == () and f.sliding_window is None
    assert f.quantization == "F32" and f.vocab_size == 100 and f.n_ctx_train == 2048
    # per block, f32: norms 2*64; q,o 64x64 each; k,v 32x64 each; up, down 128x64 each
    block = 4 * (2 * 64 + 2 * 64 * 64 + 2 * 32 * 64 + 2 * 128 * 64)
    assert f.layer_bytes == (block,) * 3
    assert f.output_bytes == 4 * 100 * 64 and not f.output_tied
    assert f.non_layer_bytes == 4 * (100 * 64 + 64 + 100 * 64)  # token_embd, output_norm, output
    assert f.n_head_kv_layers == ()


def test_tied_output_and_explicit_head_dim(tmp_path: Path) -> None:
    f = read_gguf(str(write_gguf(tmp_path / "m.gguf", tied=True, head_dim=32, n_head=4, n_head_kv=1)))
    assert f.output_tied and f.output_bytes == 4 * 100 * 64
    assert (f.head_dim_k, f.head_dim_v) == (32, 32)


def test_per_layer_kv_heads(tmp_path: Path) -> None:
    f = read_gguf(str(write_gguf(tmp_path / "m.gguf", n_head_kv=[2, 0, 2, 1])))
    assert f.n_head_kv == 2 and f.n_head_kv_layers == (2, 0, 2, 1)
    assert [f.kv_heads(i) for i in range(4)] == [2, 0, 2, 1]


@pytest.mark.parametrize(
    ("arch", "n_layer", "window", "pattern", "want_window", "want"),
    [
        ("gemma2", 6, None, None, 4096, [True, False] * 3),  # default window, even layers slide
        ("gemma2", 4, 2048, None, 2048, [True, False] * 2),
        ("gemma3", 12, 512, None, 512, [il % 6 < 5 for il in range(12)]),
        ("gemma3", 6, 0, None, None, []),  # window 0: no SWA
        ("cohere2", 8, 4096, None, 4096, [il % 4 < 3 for il in range(8)]),
        ("gpt-oss", 4, 128, None, 128, [True, False, True, False]),
        ("llama", 6, 1024, 3, 1024, [il % 3 < 2 for il in range(6)]),  # GGUF period key
        ("llama", 4, 256, [False, True, True, False], 256, [False, True, True, False]),  # per-layer key
        ("llama", 4, 1024, None, None, []),  # unknown arch, no pattern: all full (safe side)
        ("exaone4", 4, 4096, None, None, []),  # llama.cpp: SWA only for the 64-layer 32B
    ],
)
def test_swa_patterns(tmp_path: Path, arch: str, n_layer: int, window: int | None, pattern: object,
                      want_window: int | None, want: list[bool]) -> None:  # fmt: skip
    p = write_gguf(tmp_path / "m.gguf", arch, n_layer=n_layer, sliding_window=window, swa_pattern=pattern)  # type: ignore[arg-type]
    f = read_gguf(str(p))
    assert f.sliding_window == want_window
    assert list(f.swa_layers) == want


def test_chat_template_pooling_and_quant(tmp_path: Path) -> None:
    f = read_gguf(str(write_gguf(tmp_path / "a.gguf", chat_template="{% for m in messages %}{% endfor %}")))
    assert f.has_chat_template and f.chat_template and "messages" in f.chat_template
    e = read_gguf(str(write_gguf(tmp_path / "b.gguf", pooling=gguf.PoolingType.MEAN)))
    assert e.is_embedding_model and e.pooling_type == "mean"
    b = read_gguf(str(write_gguf(tmp_path / "c.gguf", "bert")))
    assert b.is_embedding_model
    q = read_gguf(str(write_gguf(tmp_path / "d.gguf", file_type=gguf.LlamaFileType.MOSTLY_Q4_0)))
    assert q.quantization == "Q4_0"
    n = read_gguf(str(write_gguf(tmp_path / "e.gguf", file_type=None, tokens=False)))
    assert n.quantization == "F32"  # guessed from the tensors
    assert n.vocab_size == 100  # from token_embd's shape


# -- bad files -----------------------------------------------------------------------------------------
def _err(path: Path | str) -> ModelError:
    with pytest.raises(ModelError) as ei:
        read_gguf(str(path))
    assert ei.value.hint, "every model error says what to do"
    return ei.value


def test_missing_and_folder(tmp_path: Path) -> None:
    assert "not found" in _err(tmp_path / "nope.gguf").message
    assert "folder" in _err(tmp_path).message


def test_text_file_named_gguf(tmp_path: Path) -> None:
    p = tmp_path / "notes.gguf"
    p.write_text("hello, this is not a model\n")
    e = _err(p)
    assert "not a GGUF file" in e.message and "b'hell'" in e.message


def test_empty_file(tmp_path: Path) -> None:
    p = tmp_path / "empty.gguf"
    p.touch()
    assert "empty" in _err(p).message


@pytest.mark.parametrize("cut", [100, 1024**2])
def test_truncated_gemma(tmp_path: Path, default_model: str, cut: int) -> None:
    p = tmp_path / "cut.gguf"
    with open(default_model, "rb") as f:
        p.write_bytes(f.read(cut))
    t0 = time.monotonic()
    e = _err(p)
    assert "truncated" in e.message
    assert time.monotonic() - t0 < 5


def test_truncated_tensor_data(tmp_path: Path) -> None:
    p = write_gguf(tmp_path / "m.gguf")
    data = p.read_bytes()
    p.write_bytes(data[:-1000])
    e = _err(p)
    assert "truncated" in e.message


def test_corrupt_array_length_fails_fast(tmp_path: Path) -> None:
    p = write_gguf(tmp_path / "m.gguf")
    data = bytearray(p.read_bytes())
    key = b"tokenizer.ggml.tokens"
    at = data.index(key) + len(key) + 8  # skip value type (ARRAY) and item type (STRING)
    data[at : at + 8] = (2**40).to_bytes(8, "little")
    p.write_bytes(bytes(data))
    t0 = time.monotonic()
    e = _err(p)
    assert "truncated" in e.message or "corrupt" in e.message
    assert time.monotonic() - t0 < 5


def test_bad_version(tmp_path: Path) -> None:
    p = write_gguf(tmp_path / "m.gguf")
    data = bytearray(p.read_bytes())
    data[4:8] = (99).to_bytes(4, "little")
    p.write_bytes(bytes(data))
    assert "corrupt" in _err(p).message


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file; see the simulated case below")
def test_permission_denied_real(tmp_path: Path) -> None:
    p = write_gguf(tmp_path / "m.gguf")
    p.chmod(0)
    assert "Permission denied" in _err(p).message


def test_permission_denied_simulated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # As root (CI) chmod cannot deny a read, so the OS error is raised by a stand-in open().
    p = write_gguf(tmp_path / "m.gguf")
    real_open = open

    def deny(file: object, *a: object, **kw: object) -> object:
        if str(file) == str(p):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *a, **kw)  # type: ignore[call-overload]

    monkeypatch.setattr("builtins.open", deny)
    e = _err(p)
    assert "Permission denied" in e.message and "chmod" in (e.hint or "")


def test_split_gguf(tmp_path: Path) -> None:
    whole = read_gguf(str(write_gguf(tmp_path / "whole.gguf")))
    write_gguf(tmp_path / "m.gguf", split_max_tensors=12)  # 35 tensors -> 3 parts
    parts = sorted(tmp_path.glob("m-*.gguf"))
    assert [p.name for p in parts] == [f"m-0000{i}-of-00003.gguf" for i in (1, 2, 3)]
    f = read_gguf(str(parts[0]))
    assert (f.layer_bytes, f.non_layer_bytes, f.output_bytes) == (
        whole.layer_bytes,
        whole.non_layer_bytes,
        whole.output_bytes,
    )
    assert f.file_size == sum(p.stat().st_size for p in parts)
    assert "first part" in (_err(parts[1]).hint or "")
    parts[2].unlink()
    assert "part 3" in _err(parts[0]).message
