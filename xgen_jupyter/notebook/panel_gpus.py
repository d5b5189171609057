"""The panel's GPU table: one row per GPU, memory as a bar, refreshed from GPU samples.

On a Ray cluster every GPU carries its node's address and indexes repeat across nodes, so rows
are keyed by ``(node, index)`` and each node gets a header; on one box ``node`` is None and
there are no headers.
"""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as w

from ..core.units import gib


def _gib(n: int | None) -> str:
    return gib(n, unit=False)


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


GpuKey = tuple[str | None, int]


class GpuTable:
    def __init__(self) -> None:
        self.rows: dict[GpuKey, GpuRow] = {}
        self.node_headers: dict[str, w.HTML] = {}  # node address → its header (a cluster only)
        self.cpu = w.Label(value="")
        self.empty = w.Label(value="waiting for the server's hardware report ...")
        self.rows_box = w.VBox([])
        self.core = w.Label(value="")  # where models run: the box service (socket, user) or this Jupyter server
        self.widget = w.VBox([w.HTML("<b>GPUs</b>"), self.empty, self.rows_box, self.cpu, self.core])

    def set_core(self, where: str | None) -> None:
        """``xgen_core`` of the events hello or of GET xgen/api/hardware; None keeps what is shown."""
        if where:
            self.core.value = f"Models run: {where}"

    def set_hardware(self, report: dict[str, Any]) -> None:
        cpu = report.get("cpu") or {}
        mem = cpu.get("memory_total")
        self.cpu.value = (
            f"CPU: {cpu.get('model_name') or '?'}, {cpu.get('cores_logical', '?')} threads, "
            f"{_gib(cpu.get('memory_available'))} / {_gib(mem)} GiB RAM free; detected by {report.get('method')}"
        )
        self.set_core(report.get("xgen_core"))
        self.set_gpus(report.get("gpus") or [])

    def set_gpus(self, gpus: list[dict[str, Any]]) -> None:
        seen: list[GpuKey] = []
        for gpu in gpus:
            key = (gpu.get("node"), int(gpu.get("index", len(seen))))
            seen.append(key)
            if key in self.rows:
                self.rows[key].update(gpu)
            else:
                self.rows[key] = GpuRow(gpu)
        for key in set(self.rows) - set(seen):
            del self.rows[key]
        nodes = list(dict.fromkeys(node for node, _ in seen))  # the server's node order
        if nodes == [None]:  # one box: a plain list, as before
            self.node_headers = {}
            children = [self.rows[k].widget for k in sorted(self.rows, key=lambda k: k[1])]
        else:
            self.node_headers = {str(n): self.node_headers.get(str(n)) or _header(n) for n in nodes}
            children = []
            for n in nodes:
                children.append(self.node_headers[str(n)])
                children += [self.rows[k].widget for k in sorted(k for k in self.rows if k[0] == n)]
        self.rows_box.children = tuple(children)
        self.empty.value = "" if self.rows else "no GPU found: models run on the CPU"


def _header(node: str | None) -> w.HTML:
    return w.HTML(f"<i>Node {html.escape(node or '(none)')}</i>")
