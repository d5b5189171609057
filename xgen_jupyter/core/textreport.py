"""Plain-text renderings of hardware, plans and servers, for the CLI and the magics."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .hardware.types import HardwareReport
from .planning.plan import LaunchPlan
from .units import gib


def render_hardware(report: HardwareReport) -> str:
    lines = [f"Detection: {report.method}"]
    if report.gpus:
        node: str | None = None
        for g in report.gpus:
            if g.node is not None and g.node != node:  # a Ray cluster: GPUs grouped by node
                node = g.node
                lines.append(f"  Node {node}:")
            kind = "integrated" if g.integrated else "discrete"
            arch = " ".join(x for x in (g.arch, g.family) if x)
            lines.append(
                ("  " if node else "") + f"  GPU {g.index}: {g.name} [{g.vendor} {arch}, {kind}] "
                f"{gib(g.memory_free)} free of {gib(g.memory_total)}" + (f" ({g.pci_bus_id})" if g.pci_bus_id else "")
            )
    else:
        lines.append("  no GPU found: models run on the CPU")
    for v in report.vulkan_devices:
        lines.append(f"  Vulkan {v.index}: {v.name} ({v.device_type}, {v.driver or 'driver ?'})")
    c = report.cpu
    lines.append(
        f"  CPU: {c.model_name or 'unknown'}, {c.cores_physical} cores / {c.cores_logical} threads, "
        f"{gib(c.memory_available)} RAM free of {gib(c.memory_total)}"
    )
    lines.append("Detectors:")
    for d in report.detectors:
        state = f"{len(d.gpus)} GPU(s)" if d.available else d.reason
        lines.append(f"  {d.name:<12} {state}  ({d.elapsed_s * 1000:.0f} ms)")
    return "\n".join(lines)


def render_plan(plan: LaunchPlan) -> str:
    s = plan.settings
    lines = [
        f"Server {plan.name!r}: {plan.backend} ({plan.server_type})",
        f"  model:    {plan.model_path}",
        f"  context:  {s.n_ctx} tokens x {s.n_parallel} slot(s), GPU layers {s.n_gpu_layers}, threads {s.n_threads}",
    ]
    if plan.memory:
        m = plan.memory
        lines.append(
            f"  memory:   GPU {gib(m.gpu_total)}, host {gib(m.host_total)} "
            f"(weights {gib(m.weights_gpu + m.weights_cpu)}, KV {gib(m.kv_cache)}, compute {gib(m.compute)})"
        )
        if m.per_gpu:
            cards = ", ".join(
                f"GPU {i} {gib(b)} of {gib(f)} free" for i, b, f in zip(plan.gpus, m.per_gpu, m.per_gpu_budget, strict=False)
            )
            lines.append(f"  per GPU:  {cards} ({s.split_mode} split)")
    if plan.fallbacks:
        lines.append(f"  fallback: {' -> '.join(plan.fallbacks)}")
    if plan.env:
        lines.append("  env:      " + " ".join(f"{k}={v}" for k, v in plan.env.items()))
    lines.append("  command:  " + " ".join(plan.argv))
    lines.append("Why:")
    lines += [f"  {r}" for r in plan.reasons]
    return "\n".join(lines)


def render_servers(servers: Iterable[dict[str, Any]]) -> str:
    rows = [("NAME", "STATE", "BACKEND", "ENDPOINT", "MODEL")]
    for s in servers:
        rows.append((s["name"], s["state"], s["backend"], s.get("endpoint") or "-", s["model"]))
    if len(rows) == 1:
        return "no servers loaded"
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(str(v).ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in rows)
