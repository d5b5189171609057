"""The catalog: every name a request's ``model`` may use to load a server on first use.

Model files and Hugging Face folders in the model dirs (``core.models()``), ``default``, and
presets: a model plus load settings, from ``c.XGen.presets`` and the administrator's
``<shared_dir>/presets.json`` (the file wins on a clash). A bad preset is reported and left out;
the others are still served.
"""

from __future__ import annotations

import difflib
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import XGenError

log = logging.getLogger("xgen.scheduler")

PRESETS_FILE = "presets.json"


def read_presets(configured: dict[str, Any], shared_dir: Path | None,
                 check: Callable[[dict[str, Any]], object]) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """(valid presets by name, one message per problem). ``check`` raises XGenError on a bad request."""
    sources: list[tuple[str, dict[str, Any]]] = [("c.XGen.presets", dict(configured or {}))]
    problems: list[str] = []
    if shared_dir is not None:
        path = Path(shared_dir) / PRESETS_FILE
        try:
            data = json.loads(path.read_text())
            if not isinstance(data, dict):
                raise ValueError("the file must hold one JSON object: {name: {model: ..., settings...}}")
            sources.append((str(path), data))
        except FileNotFoundError:
            pass
        except (OSError, ValueError) as exc:
            problems.append(f"{path}: {exc} (no preset of this file is served until it is fixed)")
    presets: dict[str, dict[str, Any]] = {}
    for where, data in sources:
        for name, body in data.items():
            why = _problem(name, body, check)
            if why:
                problems.append(f"{where}: preset {name!r}: {why}")
                continue
            presets[name] = {**body, "name": body.get("name", name)}
    for p in problems:
        log.warning("xgen: %s", p)
    return presets, problems


def _problem(name: object, body: object, check: Callable[[dict[str, Any]], object]) -> str | None:
    if not isinstance(name, str) or not name or "/" in name:
        return "a preset name must be a non-empty text without '/'"
    if not isinstance(body, dict) or not isinstance(body.get("model"), str):
        return 'it must be an object with a "model", e.g. {"model": "default", "n_ctx": 8192}'
    try:
        check(body)
    except XGenError as exc:
        return str(exc)
    return None


class Catalog:
    """Names → load requests. Built per look-up from the model dirs (cheap: a walk of two levels)."""

    def __init__(self, models: Callable[[], list[dict[str, Any]]],
                 presets: Callable[[], tuple[dict[str, dict[str, Any]], list[str]]]) -> None:
        self._models, self._presets = models, presets

    def entries(self) -> dict[str, dict[str, Any]]:
        """Every catalog name with the load request it stands for and its kind."""
        out: dict[str, dict[str, Any]] = {}
        for m in self._models():
            out[m["name"]] = {"request": {"model": m["name"]}, "kind": "default" if m["name"] == "default"
                              else m.get("format", "gguf"), "size": m.get("size")}
        presets, _ = self._presets()
        for name, body in presets.items():
            out[name] = {"request": dict(body), "kind": "preset", "size": None}
        return out

    def problems(self) -> list[str]:
        return self._presets()[1]

    def request_for(self, name: str) -> dict[str, Any] | None:
        entry = self.entries().get(name)
        return None if entry is None else dict(entry["request"])

    def close_names(self, name: str, others: list[str] | None = None) -> list[str]:
        names = list(self.entries()) + list(others or [])
        return difflib.get_close_matches(name, names, n=5, cutoff=0.5)
