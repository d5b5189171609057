"""Which backends are installed on this box, and the adapter for each."""

from __future__ import annotations

from ..config import CoreConfig
from ..errors import BackendUnavailable
from ..planning.backend import BackendInstall, BackendRow
from . import registry
from .base import BackendAdapter


def discover_backends(config: CoreConfig) -> dict[str, BackendInstall]:
    """Every registered backend with whether it is installed here (and where), in registry order."""
    by_class: dict[type[BackendAdapter], list[BackendRow]] = {}
    for r in registry.rows():
        by_class.setdefault(registry.adapter_class(r), []).append(r)
    found: dict[str, BackendInstall] = {}
    for cls, rows in by_class.items():  # one call per engine: a family shares its probes
        found.update(cls.discover(rows, config))
    out = {}
    for r in registry.rows():
        inst = found.get(r.id) or BackendInstall(r, False, reason=f"not installed: {r.install_hint}")
        if inst.available and config.allowed_backends and r.id not in config.allowed_backends:
            inst = BackendInstall(
                r, False, inst.executable, inst.source, "not allowed by c.XGen.allowed_backends"
            )
        out[r.id] = inst
    return out


def make_adapter(install: BackendInstall) -> BackendAdapter:
    if not install.available or not install.executable:
        raise BackendUnavailable(f"{install.backend} is not available", install.reason or None)
    return registry.adapter_class(install.row)(install)
