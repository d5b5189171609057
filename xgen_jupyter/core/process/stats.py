"""Live numbers from a ready engine (llama-server's /slots and /metrics) for its status view."""

from __future__ import annotations

import http.client
import json
import re
from typing import Any

from ..adapters.base import BackendAdapter
from .server import ManagedServer

_METRIC = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{[^}]*\})?\s+([-+0-9.eE]+|NaN)$")


def _get(server: ManagedServer, path: str, timeout: float) -> tuple[int, str]:
    conn = http.client.HTTPConnection(server.host, server.port or 0, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Authorization": f"Bearer {server.api_key}"})
        resp = conn.getresponse()
        return resp.status, resp.read().decode("utf-8", "replace")
    finally:
        conn.close()


def parse_metrics(text: str) -> dict[str, float]:
    """Prometheus text exposition -> {name: value} (labels dropped; the engine has one model)."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        m = _METRIC.match(line.strip())
        if m and not line.startswith("#"):
            out[m.group(1).split(":", 1)[-1]] = float(m.group(2))
    return out


def summarize_slots(slots: list[dict[str, Any]]) -> list[dict[str, Any]]:
    keep = ("id", "n_ctx", "is_processing", "id_task")
    return [{k: s.get(k) for k in keep if k in s} for s in slots]


def engine_stats(server: ManagedServer, adapter: BackendAdapter, timeout: float = 2.0) -> dict[str, Any]:
    """``{"slots": [...], "metrics": {...}}`` for engines that expose them; {} otherwise."""
    if server.state != "ready" or not adapter.stats_paths:
        return {}
    stats: dict[str, Any] = {}
    for key, path in adapter.stats_paths.items():
        try:
            status, body = _get(server, path, timeout)
        except OSError as exc:
            stats[f"{key}_error"] = str(exc)
            continue
        if status != 200:
            stats[f"{key}_error"] = f"HTTP {status}"
        elif key == "slots":
            try:
                stats["slots"] = summarize_slots(json.loads(body))
            except (ValueError, AttributeError, TypeError):
                stats["slots_error"] = "unreadable /slots answer"
        elif key == "metrics":
            stats["metrics"] = parse_metrics(body)
    return stats
