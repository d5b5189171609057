"""Per-user quotas set by the box's administrator.

Read from ``<shared_dir>/quotas.json`` (write it as root and ``chmod 644`` it, so users cannot
edit it) merged over ``c.XGen.quotas``::

    {"default": {"max_servers": 4, "gpu_bytes": "40GiB"},
     "users": {"alice": {"max_servers": 8, "gpu_bytes": "80GiB", "host_bytes": "64GiB"}}}
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import XGenError
from ..units import parse_size

log = logging.getLogger("xgen.box")
QUOTA_FILE = "quotas.json"


@dataclass(frozen=True)
class Quota:
    max_servers: int | None = None
    gpu_bytes: int | None = None
    host_bytes: int | None = None


def parse_bytes(value: Any, where: str) -> int | None:
    if value is None:
        return None
    size = parse_size(value)
    if size is None:
        raise XGenError(f"{where}: {value!r} is not a size", "write bytes or e.g. \"40GiB\"")
    return size


def _quota(d: Any, where: str) -> Quota:
    if not isinstance(d, dict):
        raise XGenError(f"{where} must be an object")
    unknown = set(d) - {"max_servers", "gpu_bytes", "host_bytes"}
    if unknown:
        raise XGenError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}",
                        "use max_servers, gpu_bytes, host_bytes")
    ms = d.get("max_servers")
    if ms is not None and (not isinstance(ms, int) or isinstance(ms, bool) or ms < 0):
        raise XGenError(f"{where}.max_servers must be a whole number ≥ 0")
    return Quota(ms, parse_bytes(d.get("gpu_bytes"), f"{where}.gpu_bytes"),
                 parse_bytes(d.get("host_bytes"), f"{where}.host_bytes"))


class Quotas:
    def __init__(self, shared_dir: Path, configured: dict[str, Any] | None = None) -> None:
        self.file = Path(shared_dir) / QUOTA_FILE
        self.configured = configured or {}

    def _merged(self) -> dict[str, Any]:
        data: dict[str, Any] = {"default": dict(self.configured.get("default", {})),
                                "users": {k: dict(v) for k, v in self.configured.get("users", {}).items()}}
        try:
            raw = json.loads(self.file.read_text())
        except FileNotFoundError:
            return data
        except (OSError, ValueError) as exc:  # a broken quota file must not stop every load on the box
            log.warning("xgen: ignoring the quota file %s: %s", self.file, exc)
            return data
        if isinstance(raw, dict):
            data["default"].update(raw.get("default", {}) or {})
            for user, q in (raw.get("users", {}) or {}).items():
                data["users"].setdefault(user, {}).update(q or {})
        return data

    def for_user(self, user: str) -> Quota:
        data = self._merged()
        merged = {**data["default"], **data["users"].get(user, {})}
        return _quota(merged, f"quota of {user}")
