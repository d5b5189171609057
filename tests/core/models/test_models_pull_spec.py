"""Parsing ``REPO[:QUANT or FILE]`` and picking files from a repo's list (pure: no network)."""

from __future__ import annotations

import pytest

from xgen_jupyter.core.errors import ModelError
from xgen_jupyter.core.models.pull_spec import HubFile, PullSpec, parse_spec, quant_of, select


@pytest.mark.parametrize(("spec", "want"), [
    ("unsloth/gemma-3-270m-it-GGUF", PullSpec("unsloth/gemma-3-270m-it-GGUF", None, None)),
    ("unsloth/gemma-3-270m-it-GGUF:q8_0", PullSpec("unsloth/gemma-3-270m-it-GGUF", None, "q8_0")),
    ("hf.co/bartowski/Qwen3-8B-GGUF:Q4_K_M", PullSpec("bartowski/Qwen3-8B-GGUF", None, "Q4_K_M")),
    ("https://huggingface.co/Qwen/Qwen3-0.6B", PullSpec("Qwen/Qwen3-0.6B", None, None)),
    ("org/m-GGUF@v2:sub/m-Q4_0.gguf", PullSpec("org/m-GGUF", "v2", "sub/m-Q4_0.gguf")),
])  # fmt: skip
def test_parse_spec(spec: str, want: PullSpec) -> None:
    assert parse_spec(spec) == want


@pytest.mark.parametrize("spec", ["", "  ", "a b/c", "../x", "org/m:../../etc/passwd", "org/m;rm", "a/b/c"])
def test_bad_specs_are_refused_with_the_form_to_use(spec: str) -> None:
    with pytest.raises(ModelError):
        parse_spec(spec)


@pytest.mark.parametrize(("name", "quant"), [
    ("gemma-3-270m-it-Q4_K_M.gguf", "Q4_K_M"),
    ("gemma-3-270m-q4_k_m.gguf", "Q4_K_M"),
    ("Qwen3-8B-UD-Q4_K_XL.gguf", "UD-Q4_K_XL"),
    ("Q4_K_M/Qwen3-235B-A22B-Q4_K_M-00001-of-00003.gguf", "Q4_K_M"),
    ("model.IQ4_XS.gguf", "IQ4_XS"),
    ("Llama-3.2-1B-Instruct-f16.gguf", "F16"),
    ("gpt-oss-20b-MXFP4.gguf", "MXFP4"),
    ("model.gguf", None),
])  # fmt: skip
def test_quant_of(name: str, quant: str | None) -> None:
    assert quant_of(name) == quant


def _f(name: str, size: int = 1000) -> HubFile:
    return HubFile(name, size, "0" * 64)


def test_default_quant_split_groups_and_mmproj() -> None:
    files = [_f("m-Q8_0.gguf"), _f("mmproj-m-f16.gguf"), _f("README.md")] + [
        _f(f"Q4_K_M/m-Q4_K_M-0000{i}-of-00002.gguf") for i in (1, 2)
    ]
    sel = select("o/m", files, None)
    assert [f.name for f in sel.files] == ["Q4_K_M/m-Q4_K_M-00001-of-00002.gguf", "Q4_K_M/m-Q4_K_M-00002-of-00002.gguf"]
    assert sel.total == 2000 and sel.quant == "Q4_K_M"
    assert [f.name for f in select("o/m", files, "q8_0").files] == ["m-Q8_0.gguf"]
    assert [f.name for f in select("o/m", files, "mmproj-m-f16.gguf").files] == ["mmproj-m-f16.gguf"]


def test_single_quant_repo_needs_no_quant_and_missing_parts_are_refused() -> None:
    assert select("o/m", [_f("m-Q6_K.gguf")], None).quant == "Q6_K"
    with pytest.raises(ModelError, match="1 of 3 parts"):
        select("o/m", [_f("m-Q4_K_M-00001-of-00003.gguf")], None)
    with pytest.raises(ModelError) as e:
        select("o/m", [_f("m-Q6_K.gguf"), _f("m-Q8_0.gguf")], None)
    assert "no quant given" in e.value.message and "Q6_K (m-Q6_K.gguf" in (e.value.hint or "")


def test_hf_folder_files_config_last() -> None:
    files = [_f("config.json"), _f("model.safetensors"), _f("tokenizer.json"), _f("README.md"), _f("pytorch_model.bin")]
    sel = select("o/Tiny", files, None)
    assert sel.kind == "hf" and sel.subdir == "Tiny"
    assert [f.name for f in sel.files] == ["model.safetensors", "tokenizer.json", "config.json"]
    with pytest.raises(ModelError, match="neither a GGUF"):
        select("o/x", [_f("README.md")], None)
