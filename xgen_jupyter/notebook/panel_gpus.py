"""The panel's GPU table: one row per GPU, memory as a bar, refreshed from GPU samples."""

from __future__ import annotations

from typing import Any

import ipywidgets as w

GiB = 1024**3


def _gib(n: int | None) -> str:
    return "?" if n is None else f"{n / GiB:.1f}"


class GpuRow:
    def __init__(self, gpu: dict[str, Any]) -> None:
        self.name = w.Label(layout=w.Layout(width="230px"))
        self.arch = w.Label(layout=w.Layout(width="150px"))
        self.kind = w.Label(layout=w.Layout(width="80px"))
        self.memory_bar = w.FloatProgress(min=0.0, max=1.0, layout=w.Layout(width="160px"))
        self.memory = w.Label(layout=w.Layout(width="130px"))
        self.utilization = w.Label(layout=w.Layout(width="70px"))
        self.widget = w.HBox(
            [self.name, self.arch, self.kind, self.memory_bar, self.memory, self.utilization]
        )
        self.update(gpu)

    def update(self, gpu: dict[str, Any]) -> None:
        self.name.value = f"{gpu.get('index', '?')}: {gpu.get('name', '?')}"
        self.arch.value = " ".join(
            str(x) for x in (gpu.get("vendor"), gpu.get("arch"), gpu.get("family")) if x
        )
        self.kind.value = "integrated" if gpu.get("integrated") else "discrete"
        total = gpu.get("memory_total") or 0
        used = gpu.get("memory_used")
        if used is None and gpu.get("memory_free") is not None:
            used = total - gpu["memory_free"]
        self.memory_bar.value = (used / total) if (used is not None and total) else 0.0
        self.memory_bar.bar_style = "danger" if self.memory_bar.value > 0.9 else "info"
        self.memory.value = f"{_gib(used)} / {_gib(total)} GiB"
        util = gpu.get("utilization")
        self.utilization.value = "-" if util is None else f"{util:.0f}%"


class GpuTable:
    def __init__(self) -> None:
        self.rows: dict[int, GpuRow] = {}
        self.cpu = w.Label(value="")
        self.empty = w.Label(value="waiting for the server's hardware report ...")
        self.rows_box = w.VBox([])
        self.widget = w.VBox([w.HTML("<b>GPUs</b>"), self.empty, self.rows_box, self.cpu])

    def set_hardware(self, report: dict[str, Any]) -> None:
        cpu = report.get("cpu") or {}
        mem = cpu.get("memory_total")
        self.cpu.value = (
            f"CPU: {cpu.get('model_name') or '?'}, {cpu.get('cores_logical', '?')} threads, "
            f"{_gib(cpu.get('memory_available'))} / {_gib(mem)} GiB RAM free; detected by {report.get('method')}"
        )
        self.set_gpus(report.get("gpus") or [])

    def set_gpus(self, gpus: list[dict[str, Any]]) -> None:
        seen: set[int] = set()
        for gpu in gpus:
            idx = int(gpu.get("index", len(seen)))
            seen.add(idx)
            if idx in self.rows:
                self.rows[idx].update(gpu)
            else:
                self.rows[idx] = GpuRow(gpu)
        for idx in set(self.rows) - seen:
            del self.rows[idx]
        self.rows_box.children = tuple(self.rows[i].widget for i in sorted(self.rows))
        self.empty.value = "" if self.rows else "no GPU found: models run on the CPU"
