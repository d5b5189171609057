"""Fixtures of the box-service tests: real users, a model every user may read, a running service."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from .box_harness import BoxProc, ensure_users, world_dir


@pytest.fixture(scope="session")
def unix_users() -> tuple[str, ...]:
    ensure_users()
    return ("alice", "bob", "carol")


@pytest.fixture(scope="session")
def shared_models(default_model: str) -> Iterator[Path]:
    """The default GGUF copied where every user may read it (root's ~/.cache is not)."""
    folder = world_dir("xgen-svc-models-")
    target = folder / "gemma.gguf"
    shutil.copyfile(default_model, target)
    os.chmod(target, 0o644)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def box_root() -> Iterator[Path]:
    root = world_dir("xgen-svc-")
    (root / "shared").mkdir(mode=0o755)
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def box_factory(box_root: Path, shared_models: Path) -> Iterator:
    made: list[BoxProc] = []

    def make(**kw: object) -> BoxProc:
        box = BoxProc(box_root, shared_models, **kw)  # type: ignore[arg-type]
        made.append(box)
        return box.start()

    yield make
    for box in made:
        box.stop()
