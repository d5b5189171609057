"""Text for the magics, from the API's JSON: the core's renderers where they exist."""

from __future__ import annotations

from typing import Any

from ..core.api import plan_from_dict
from ..core.hardware.types import HardwareReport
from ..core.planning.plan import Reason
from ..core.textreport import render_hardware, render_plan, render_servers
from ..core.units import gib

__all__ = ["hardware_text", "models_text", "plan_text", "ready_text", "servers_text"]


def hardware_text(report: dict[str, Any]) -> str:
    text = render_hardware(HardwareReport.from_dict(report))
    # Where the Jupyter server's models run (xgen_core in GET xgen/api/hardware): itself or the box service.
    return f"{text}\nmodels run: {report['xgen_core']}" if report.get("xgen_core") else text


def plan_text(plan: dict[str, Any]) -> str:
    return render_plan(plan_from_dict(plan))


def servers_text(servers: list[dict[str, Any]]) -> str:
    return render_servers(servers)


def models_text(models: list[dict[str, Any]]) -> str:
    if not models:
        return "no models found (configure c.XGen.model_dirs, or load 'default')"
    rows = [(m["name"], m.get("format") or "?", gib(m.get("size")), m.get("path") or "-") for m in models]
    width = max(len(r[0]) for r in rows)
    return "\n".join(f"{n:<{width}}  {f:<5} {s:>9}  {p}" for n, f, s, p in rows)


def reasons_text(reasons: list[dict[str, Any]]) -> str:
    return "\n".join(f"  {Reason(**r)}" for r in reasons) or "  (no rules applied)"


def ready_text(server: dict[str, Any], proxy_base: str | None) -> str:
    """What a finished ``%xgen load`` prints: where to reach it, on what, and why."""
    name = server["name"]
    lines = [
        f"ready: {name!r} ({server['server_type']}) on {server['backend']}, engine at {server.get('endpoint')}",
    ]
    if proxy_base:
        lines.append(
            f"  OpenAI API: {proxy_base}  model={name!r}  (xgen_jupyter.client({name!r}) or %xgen client {name})"
        )
    else:
        lines.append(f"  OpenAI client: xgen_jupyter.client({name!r}) or %xgen client {name}")
    attempts = server.get("attempts") or []
    if len(attempts) > 1:
        tried = ", ".join(f"{a['backend']} ({(a.get('cause') or {}).get('summary', 'ok')})" for a in attempts)
        lines.append(f"  attempts: {tried}")
    lines.append("Why:")
    lines.append(reasons_text(server.get("reasons") or []))
    return "\n".join(lines)


def devices_text(entry: dict[str, Any]) -> str:
    """The GPUs a server holds, by label (e.g. "GPU 0 (NVIDIA H100)"); "cpu" when it holds none."""
    gpus = [d for d in entry.get("devices") or [] if not isinstance(d, dict) or d.get("kind") != "host"]
    return ", ".join(str(d.get("label") or d.get("device")) if isinstance(d, dict) else str(d) for d in gpus) or "cpu"


def box_text(entries: list[dict[str, Any]]) -> str:
    """Everyone's servers on this box: owner, name, model, devices, memory, state (never keys)."""
    if not entries:
        return "no servers on this box"
    rows = [("OWNER", "NAME", "MODEL", "DEVICES", "GPU", "HOST", "STATE")]
    for e in entries:
        devices = devices_text(e)
        rows.append((str(e.get("owner", "?")), str(e.get("name", "")), str(e.get("model", "")), devices,
                     gib(e.get("gpu_bytes") or 0), gib(e.get("host_bytes") or 0), str(e.get("state", ""))))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in rows)
