"""Per-user quotas set by the box's administrator.

Read from ``<shared_dir>/quotas.json`` (write it as root and ``chmod 644`` it, so users cannot
edit it) merged over ``c.XGen.quotas``::

    {"default": {"max_servers": 4, "gpu_bytes": "40GiB"},
     "users": {"alice": {"max_servers": 8, "gpu_bytes": "80GiB", "host_bytes": "64GiB"}}}
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import XGenError

log = logging.getLogger("xgen.box")
QUOTA_FILE = "quotas.json"
_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "kib": 1024, "m": 1000**2, "mb": 1000**2, "mib": 1024**2,
          "g": 1000**3, "gb": 1000**3, "gib": 1024**3, "t": 1000**4, "tb": 1000**4, "tib": 1024**4}


@dataclass(frozen=True)
class Quota:
    max_servers: int | None = None
    gpu_bytes: int | None = None
    host_bytes: int | None = None


def parse_bytes(value: Any, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", str(value))
    if not m or m.group(2).lower() not in _UNITS:
        raise XGenError(f"{where}: {value!r} is not a size", "write bytes or e.g. \"40GiB\"")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


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
