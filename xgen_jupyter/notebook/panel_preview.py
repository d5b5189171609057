"""Under the panel's load form, before "load" is clicked: the plan's predicted memory on each card
it uses (and in host RAM for the CPU share) against what is free now, as HTML bars, and the
predicted tokens/s with the runner-up. The plan comes from ``client.plan()`` (nothing starts);
the free memory from the events' GPU samples, so the bars move while the plan stands."""

from __future__ import annotations

import html
import threading
from typing import Any

import ipywidgets as w

from ..core.units import gib

Message = dict[str, Any]

STRATEGIES = {
    "all-gpu": "all on the GPU",
    "experts": "experts on the CPU",
    "layers": "whole layers on the CPU",
    "cpu": "on the CPU",
}


def rows(plan: Message, gpus: list[Message], cpu: Message | None) -> list[Message]:
    """One row per card the plan uses, then host RAM: label, planned, free, total (bytes)."""
    mem = plan.get("memory")
    if not mem:
        return []
    out: list[Message] = []
    ids = list(plan.get("gpus") or [])
    per_gpu = list(mem.get("per_gpu") or [])
    for i, index in enumerate(ids):
        gpu = next((g for g in gpus if g.get("index") == index), {})
        label = f"GPU {index} {gpu.get('name', '')}".strip()
        planned = per_gpu[i] if per_gpu else mem["gpu_total"]
        out.append(_row(f"gpu:{index}", label, planned, gpu.get("memory_free"), gpu.get("memory_total")))
    if mem.get("host_total") or not ids:
        cpu = cpu or {}
        out.append(
            _row("host", "Host RAM", mem["host_total"], cpu.get("memory_available"), cpu.get("memory_total"))
        )
    return out


def _row(key: str, label: str, planned: int, free: int | None, total: int | None) -> Message:
    return {"key": key, "label": label, "planned": planned, "free": free, "total": total,
            "over": free is not None and planned > free}  # fmt: skip


def row_text(r: Message) -> str:
    free = f" of {gib(r['free'])} free" if r["free"] is not None else ""
    total = f" ({gib(r['total'])})" if r["total"] else ""
    return f"{r['label']}: {gib(r['planned'])} planned{free}{total}"


def speed_lines(pred: Message | None) -> list[str]:
    if not pred:
        return []

    def speed(p: Message) -> str:
        return f"~{p['decode_tps']:.0f} t/s decode, ~{p['prompt_tps']:.0f} t/s prompt"

    how = ": ".join(x for x in (STRATEGIES.get(pred["strategy"], pred["strategy"]), pred.get("flags")) if x)
    lines = [f"predicted {speed(pred)} ({how})"]
    up = pred.get("runner_up")
    if up:
        flags = f" ({up['flags']})" if up.get("flags") else ""
        lines.append(f"runner-up {STRATEGIES.get(up['strategy'], up['strategy'])}{flags}: {speed(up)}")
    return lines


def _bar(r: Message) -> str:
    total = r["total"]
    if not total:
        return ""
    used = 0.0 if r["free"] is None else max(0.0, min(100.0, 100 * (total - r["free"]) / total))
    planned = max(0.0, min(100.0 - used, 100 * r["planned"] / total))
    color = "#d32f2f" if r["over"] else "#1976d2"
    return (
        "<div style='display:flex;width:320px;height:10px;background:#e0e0e0;border-radius:3px;overflow:hidden'>"
        f"<div style='width:{used:.1f}%;background:#9e9e9e'></div>"
        f"<div class='xgen-planned' style='width:{planned:.1f}%;background:{color}'></div></div>"
    )


class PlanPreview:
    def __init__(self) -> None:
        self.widget = w.HTML(value="")
        self.plan: Message | None = None
        self.error = ""
        self._gpus: list[Message] = []
        self._cpu: Message | None = None
        self._lock = threading.Lock()  # set from the events thread and the form's timer thread

    def set_plan(self, plan: Message | None) -> None:
        with self._lock:
            self.plan, self.error = plan, ""
            self._render()

    def set_error(self, message: str) -> None:
        with self._lock:
            self.plan, self.error = None, message
            self._render()

    def set_hardware(self, hardware: Message) -> None:
        with self._lock:
            self._gpus = list(hardware.get("gpus") or self._gpus)
            self._cpu = hardware.get("cpu") or self._cpu
            self._render()

    def set_gpus(self, gpus: list[Message]) -> None:
        with self._lock:
            self._gpus = list(gpus)
            self._render()

    def _render(self) -> None:
        if self.error:
            self.widget.value = f"<div style='color:#d32f2f'>plan: {html.escape(self.error)}</div>"
            return
        if self.plan is None:
            self.widget.value = ""
            return
        parts = [f"<div><i>plan: {html.escape(str(self.plan.get('backend', '')))}</i></div>"]
        for r in rows(self.plan, self._gpus, self._cpu):
            warn = " (more than is free now)" if r["over"] else ""
            parts.append(f"<div class='xgen-preview-row' data-key='{r['key']}'>"
                         f"{html.escape(row_text(r) + warn)}{_bar(r)}</div>")  # fmt: skip
        parts += [f"<div>{html.escape(line)}</div>" for line in speed_lines(self.plan.get("prediction"))]
        # "predicted X, last measured Y" when an earlier load of the same model and settings was measured.
        parts += [
            f"<div title='{html.escape(r.get('why', ''), quote=True)}'>{html.escape(r['effect'])}</div>"
            for r in self.plan.get("reasons") or []
            if r.get("rule") == "calibration"
        ]
        self.widget.value = "".join(parts)
