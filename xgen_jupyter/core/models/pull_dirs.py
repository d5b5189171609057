"""Which folder a pull lands in (and the catalog reads when no model dir is configured)."""

from __future__ import annotations

import os
from pathlib import Path


def default_pull_dir() -> Path:
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return Path(os.environ.get("XGEN_MODELS_DIR") or cache / "xgen" / "models")


def box_dir(shared_dir: str | Path) -> Path:
    return Path(shared_dir) / "models"


def pull_dir(model_dirs: list[str], shared_dir: str | Path | None = None) -> Path:
    """Where pulls land: the box-wide ``<shared_dir>/models`` when it is one of the model dirs (so the
    catalog lists it: one copy for every user), else the first model dir, else the per-user default."""
    dirs = [Path(os.path.expanduser(d)).absolute() for d in model_dirs]
    if shared_dir and box_dir(shared_dir).absolute() in dirs:
        return box_dir(shared_dir).absolute()
    if model_dirs:
        return Path(os.path.expanduser(model_dirs[0])).absolute()
    return default_pull_dir()
