"""Hugging Face folders: config.json + hand-written safetensors, read without loading tensors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.model_files import write_hf, write_safetensors
from xgen_jupyter.core.errors import ModelError
from xgen_jupyter.core.models.hf_info import read_hf, safetensors_header


def test_llama_folder(tmp_path: Path) -> None:
    d = write_hf(tmp_path / "tiny", n_layer=2, hidden=64, heads=4, kv_heads=2, vocab=128,
                 template="{{ messages }}")  # fmt: skip
    f = read_hf(str(d))
    assert (f.format, f.architecture, f.name) == ("hf", "llama", "tiny")
    assert (f.n_layer, f.n_embd, f.n_head, f.n_head_kv, f.head_dim_k) == (2, 64, 4, 2, 16)
    assert f.n_ctx_train == 4096 and f.vocab_size == 128
    assert f.dtype == "bfloat16" and f.quantization == "bfloat16"
    # per layer, bf16 (2 bytes): q 64x64, k 32x64, v 32x64, o 64x64, down 64x128, norm 64
    per_layer = 2 * (64 * 64 + 32 * 64 + 32 * 64 + 64 * 64 + 64 * 128 + 64)
    assert f.layer_bytes == (per_layer, per_layer)
    # embed 128x64, norm 64, lm_head 128x64
    assert f.non_layer_bytes == 2 * (128 * 64 + 64 + 128 * 64)
    assert f.output_bytes == 2 * 128 * 64 and not f.output_tied
    assert f.n_params == f.weight_bytes // 2
    assert f.has_chat_template and f.chat_template == "{{ messages }}"
    assert f.swa_layers == () and not f.is_embedding_model


def test_sharded_tied_and_jinja_template(tmp_path: Path) -> None:
    d = write_hf(tmp_path / "m", n_layer=3, tied=True, shards=2)
    (d / "chat_template.jinja").write_text("{% for m in messages %}{% endfor %}")
    f = read_hf(str(d))
    assert len(f.layer_bytes) == 3 and all(b > 0 for b in f.layer_bytes)
    assert f.output_tied and f.output_bytes == 2 * 128 * 64
    assert f.has_chat_template
    assert f.file_size == sum(p.stat().st_size for p in d.glob("*.safetensors"))


def test_sliding_window_from_layer_types_and_arch(tmp_path: Path) -> None:
    types = ["sliding_attention", "sliding_attention", "full_attention", "sliding_attention"]
    f = read_hf(
        str(write_hf(tmp_path / "a", n_layer=4, config={"sliding_window": 512, "layer_types": types}))
    )
    assert f.sliding_window == 512 and f.swa_layers == (True, True, False, True)
    g = read_hf(str(write_hf(tmp_path / "b", n_layer=6, config={"model_type": "gemma3_text", "sliding_window": 512,
                                                                "sliding_window_pattern": 6})))  # fmt: skip
    assert g.swa_layers == (True,) * 5 + (False,)
    q = read_hf(str(write_hf(tmp_path / "c", config={"model_type": "qwen2", "sliding_window": 4096,
                                                     "use_sliding_window": False})))  # fmt: skip
    assert q.sliding_window is None and q.swa_layers == ()


def test_multimodal_text_config(tmp_path: Path) -> None:
    d = write_hf(tmp_path / "mm", n_layer=2)
    cfg = json.loads((d / "config.json").read_text())
    text = {
        k: cfg.pop(k)
        for k in ("num_hidden_layers", "hidden_size", "num_attention_heads", "num_key_value_heads")
    }
    cfg["text_config"] = text
    (d / "config.json").write_text(json.dumps(cfg))
    f = read_hf(str(d))
    assert (f.n_layer, f.n_embd, f.n_head) == (2, 64, 4)


def test_sentence_transformers_pooling(tmp_path: Path) -> None:
    d = write_hf(tmp_path / "emb", config={"architectures": ["BertModel"], "model_type": "bert"})
    (d / "1_Pooling").mkdir()
    (d / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode_cls_token": True}))
    f = read_hf(str(d))
    assert f.is_embedding_model and f.pooling_type == "cls"


def test_header_is_read_not_the_tensors(tmp_path: Path) -> None:
    p = tmp_path / "x.safetensors"
    n = write_safetensors(p, {"a": ("F32", [4, 8]), "b": ("F16", [3])})
    h = safetensors_header(str(p))
    assert n == 4 * 32 + 2 * 3
    assert h["a"]["data_offsets"] == [0, 128] and h["b"]["data_offsets"] == [128, 134]


# -- errors ------------------------------------------------------------------------------------------
def _err(path: Path) -> ModelError:
    with pytest.raises(ModelError) as ei:
        read_hf(str(path))
    assert ei.value.hint
    return ei.value


def test_missing_config(tmp_path: Path) -> None:
    (tmp_path / "model.safetensors").write_bytes(b"")
    assert "no config.json" in _err(tmp_path).message


def test_no_weights(tmp_path: Path) -> None:
    d = write_hf(tmp_path / "m")
    for p in d.glob("*.safetensors"):
        p.unlink()
    (d / "pytorch_model.bin").write_bytes(b"x")
    e = _err(d)
    assert "no *.safetensors" in e.message and "convert" in (e.hint or "")


def test_truncated_and_garbage_safetensors(tmp_path: Path) -> None:
    d = write_hf(tmp_path / "m")
    p = next(d.glob("*.safetensors"))
    data = p.read_bytes()
    p.write_bytes(data[:-10])
    assert "truncated" in _err(d).message
    p.write_bytes(b"\xff" * 64)
    assert "not a safetensors file" in _err(d).message
    p.write_bytes((20).to_bytes(8, "little") + b"{not json at all!!!}")
    assert "corrupt" in _err(d).message


def test_bad_config(tmp_path: Path) -> None:
    d = write_hf(tmp_path / "m")
    (d / "config.json").write_text("{oops")
    assert "not valid JSON" in _err(d).message
    (d / "config.json").write_text(json.dumps({"model_type": "llama"}))
    assert "lacks" in _err(d).message
