"""Settings of the core: one object from the Jupyter extension (its ``c.XGen`` traits of the same
names) or the CLI, down to the Ray nodes (:meth:`CoreConfig.to_dict` / :meth:`CoreConfig.from_dict`).

A new setting costs two edits: the field here and the trait in ``server/app.py``;
tests/server/test_config_traits.py fails if one side is missing or a field does not reach a node.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
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
    #: GPU memory kept free beside each plan: gpu_margin_mib plus gpu_margin x the planned bytes
    #: (sized by the memory estimate's measured error, core/planning/margin.py; the same in the
    #: planner, the box registry and Ray placement).
    gpu_margin: float = 0.01
    gpu_margin_mib: float = 64.0
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
    # -- one endpoint for every model (core/scheduler) -------------------------------------
    #: Named presets, loadable by name on first request: {"chat": {"model": "default", "n_ctx": 8192}}
    #: (an administrator's <shared_dir>/presets.json adds to them and wins on a clash).
    presets: dict[str, Any] = field(default_factory=dict)
    #: Most requests waiting for one server's slots; more are answered 429 with Retry-After.
    queue_limit: int = 64
    # -- scale-out (core/cluster, docs/scale-out.md) ---------------------------------------
    #: Ray cluster whose nodes run the engines: "ray://head:10001" (Ray Client), "head:6379" or
    #: "auto" (this machine is a node); None: engines run on this box, as without Ray.
    cluster: str | None = None

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    def to_dict(self, names: tuple[str, ...] | frozenset[str] | None = None) -> dict[str, Any]:
        """Plain data (paths as text) for the given fields (default: all): it crosses Ray's wire."""
        out: dict[str, Any] = {}
        for f in fields(self):
            if names is None or f.name in names:
                v = getattr(self, f.name)
                out[f.name] = str(v) if isinstance(v, Path) else _copy(v)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CoreConfig:
        """The inverse of :meth:`to_dict`. Unknown keys are ignored (a node on another xgen version);
        '' in an optional field means unset (None)."""
        kw: dict[str, Any] = {}
        for f in fields(cls):
            if f.name not in data:
                continue
            v = data[f.name]
            optional = "None" in str(f.type)
            if optional and v == "":
                v = None
            elif v is not None and "Path" in str(f.type):
                v = Path(v)
            kw[f.name] = _copy(v)
        return cls(**kw)

    def for_nodes(self) -> dict[str, Any]:
        """The settings every Ray node's agent gets (see :func:`node_config`)."""
        return self.to_dict(FORWARDED)

    @classmethod
    def for_node(cls, settings: dict[str, Any], host: str, state_dir: Path) -> CoreConfig:
        """A node's config: the Jupyter side's settings, the node's own address and state folder."""
        forwarded = {k: v for k, v in settings.items() if k in FORWARDED}
        # Idle unload is the Jupyter side's call: the proxy there sees the traffic.
        return replace(cls.from_dict(forwarded), host=host, state_dir=state_dir, idle_ttl=0.0)


def _copy(v: Any) -> Any:
    return list(v) if isinstance(v, list | tuple) else dict(v) if isinstance(v, dict) else v


#: Fields with no ``c.XGen`` trait, on purpose: set by the CLI, tests or the environment only.
CORE_ONLY = frozenset({
    "user",  # $XGEN_USER, else the Unix user: a Jupyter user must not claim to be someone else
    "restart_backoff",  # the first wait; its cap is the setting that matters on a box
})  # fmt: skip

#: Fields each Ray node keeps its own of (engines bind to the node's address; its own state folder;
#: engine builds where that node has them; a node is not itself a cluster client).
NODE_LOCAL = frozenset({"host", "state_dir", "engines_dir", "cluster"})

#: What the Jupyter side passes on to every node: everything else (paths and binaries must make
#: sense on the node: shared model storage, engines installed at the same place).
FORWARDED = frozenset(f.name for f in fields(CoreConfig)) - NODE_LOCAL
