"""Settings of the core, shared by the CLI and the Jupyter extension (which fills them from traitlets)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def _cache_home() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")


def default_engines_dir() -> Path:
    return Path(os.environ.get("XGEN_ENGINES_DIR") or _cache_home() / "xgen" / "engines")


def default_state_dir() -> Path:
    return Path(os.environ.get("XGEN_STATE_DIR") or _cache_home() / "xgen" / "state")


@dataclass
class CoreConfig:
    #: Folders models may be loaded from; empty means any path the user can read.
    model_dirs: list[str] = field(default_factory=list)
    #: Backends the planner may choose; empty means all installed ones.
    allowed_backends: list[str] = field(default_factory=list)
    #: Explicit engine binaries by backend id (``llama-server-rocm: /opt/x/llama-server``).
    binaries: dict[str, str] = field(default_factory=dict)
    #: Python interpreter that has vLLM installed (its own venv, say); default: this one.
    vllm_python: str | None = None
    #: gfx targets the ROCm llama-server build was compiled for (empty: unknown, assume yes).
    rocm_targets: list[str] = field(default_factory=list)
    engines_dir: Path = field(default_factory=default_engines_dir)
    state_dir: Path = field(default_factory=default_state_dir)
    default_n_ctx: int = 4096
    host: str = "127.0.0.1"
    ready_timeout: float = 600.0
    grace_period: float = 5.0
    log_lines: int = 5000
    #: Per-server log file cap in bytes (rotated once past it).
    log_file_bytes: int = 20 * 1024 * 1024
    #: Safety margin kept free on a GPU, as a fraction of its total (at least 512 MiB).
    gpu_margin: float = 0.05
    # -- shared GPU box (core/box, docs/shared-box.md) ------------------------------------
    #: Folder of the box-wide registry shared by every user's Jupyter server; None: no registry.
    shared_dir: Path | None = None
    #: The xgen identity of this process's owner (default: $XGEN_USER, else the Unix user name).
    user: str | None = None
    #: Per-user quotas: {"default": {...}, "users": {name: {max_servers, gpu_bytes, host_bytes}}}.
    quotas: dict[str, Any] = field(default_factory=dict)
    #: Unload a ready server unused for this many seconds (a load's own idle_ttl wins); 0: never.
    idle_ttl: float = 0.0
    #: Default restart policy (never | on-crash), its restart cap and backoff (doubling, capped).
    restart_policy: str = "never"
    max_restarts: int = 3
    restart_backoff: float = 1.0
    restart_backoff_cap: float = 30.0
    #: Seconds between idle checks and reclaiming entries of dead Jupyter servers.
    janitor_interval: float = 5.0
    # -- scale-out (core/cluster, docs/scale-out.md) ---------------------------------------
    #: Ray cluster whose nodes run the engines: "ray://head:10001" (Ray Client), "head:6379" or
    #: "auto" (this machine is a node); None: engines run on this box, as without Ray.
    cluster: str | None = None
