"""Fixtures shared by every test: the real default model and an XGenCore on a tmp state dir."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_DEVICES = REPO.parent / "shared" / "devices"


@pytest.fixture(scope="session")
def default_model() -> str:
    from xgen_jupyter.core.models.resolve import default_model_path

    return default_model_path()


@pytest.fixture()
def core_factory(tmp_path: Path) -> Iterator:
    """Make XGenCore instances that are shut down (engines stopped) after the test."""
    from xgen_jupyter.core.config import CoreConfig
    from xgen_jupyter.core.service import XGenCore

    made: list[XGenCore] = []

    def make(**kw: object) -> XGenCore:
        hardware = kw.pop("hardware", None)
        cfg = CoreConfig(state_dir=tmp_path / "state", **kw)  # type: ignore[arg-type]
        core = XGenCore(cfg, hardware=hardware)  # type: ignore[arg-type]
        made.append(core)
        return core

    yield make
    for core in made:
        core.shutdown()


def children_pids() -> set[int]:
    return {p.pid for p in psutil.Process(os.getpid()).children(recursive=True)}


def pid_alive(pid: int) -> bool:
    try:
        p = psutil.Process(pid)
        return p.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def post_json(url: str, body: dict, key: str | None = None, timeout: float = 300) -> tuple[int, dict]:
    """POST JSON to an engine (with its Bearer key if given) -> (status, JSON); 4xx/5xx never raise."""
    import json
    import urllib.error
    import urllib.request

    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
    req.add_header("Content-Type", "application/json")
    if key:
        req.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, {}
