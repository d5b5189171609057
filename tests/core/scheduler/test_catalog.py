"""Catalog names and presets: c.XGen.presets, the administrator's presets file, errors in either."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from xgen_jupyter.core.errors import RequestError
from xgen_jupyter.core.scheduler.catalog import Catalog, read_presets


def check(body: dict[str, Any]) -> None:
    if not isinstance(body.get("n_ctx", 1), int):
        raise RequestError("n_ctx must be a whole number")


def test_presets_from_config_and_file_the_file_wins_bad_ones_reported(tmp_path: Path) -> None:
    (tmp_path / "presets.json").write_text(json.dumps({
        "chat": {"model": "default", "n_ctx": 8192},
        "broken": {"model": "default", "n_ctx": "lots"},
        "nomodel": {"n_ctx": 512},
    }))
    presets, problems = read_presets({"chat": {"model": "x"}, "embed": {"model": "default"}}, tmp_path, check)
    assert presets == {"chat": {"model": "default", "n_ctx": 8192, "name": "chat"},
                       "embed": {"model": "default", "name": "embed"}}
    assert len(problems) == 2
    assert "preset 'broken': n_ctx must be a whole number" in problems[0]
    assert "preset 'nomodel'" in problems[1] and '"model"' in problems[1]


def test_an_unreadable_presets_file_leaves_the_configured_ones(tmp_path: Path) -> None:
    (tmp_path / "presets.json").write_text("{not json")
    presets, problems = read_presets({"chat": {"model": "default"}}, tmp_path, check)
    assert list(presets) == ["chat"]
    assert len(problems) == 1 and "presets.json" in problems[0] and "fixed" in problems[0]


def test_catalog_names_and_close_names() -> None:
    models = [{"name": "default", "format": "gguf", "size": 1}, {"name": "qwen3-8b", "format": "gguf", "size": 2}]
    cat = Catalog(lambda: models, lambda: ({"chat": {"model": "default", "name": "chat"}}, []))
    assert set(cat.entries()) == {"default", "qwen3-8b", "chat"}
    assert cat.entries()["chat"]["kind"] == "preset"
    assert cat.request_for("qwen3-8b") == {"model": "qwen3-8b"}
    assert cat.request_for("nope") is None
    assert cat.close_names("qwen3-7b") == ["qwen3-8b"]
