"""The panel's "On this box" section: every user's servers on the shared box (``scope=box``).

Owner, name, model, devices (or "cpu"), GPU/host memory and state per server; the user's own
are marked "you". The listing never holds keys or logs, and this view shows nothing else.
"""

from __future__ import annotations

from typing import Any

import ipywidgets as w

from ..core.textreport import gib
from .render import devices_text

HEADER = ("owner", "name", "model", "devices", "GPU", "host", "state")
WIDTHS = ("90px", "120px", "180px", "200px", "80px", "80px", "80px")


class BoxRow:
    def __init__(self, entry: dict[str, Any]) -> None:
        self.owner, self.name, self.model, self.devices, self.gpu, self.host, self.state = (
            w.Label(layout=w.Layout(width=wd)) for wd in WIDTHS
        )
        self.widget = w.HBox(
            [self.owner, self.name, self.model, self.devices, self.gpu, self.host, self.state]
        )
        self.data: dict[str, Any] = {}
        self.update(entry)

    def update(self, entry: dict[str, Any]) -> None:
        self.data = dict(entry)
        self.owner.value = "you" if entry.get("mine") else str(entry.get("owner") or "?")
        self.name.value = str(entry.get("name", ""))
        self.model.value = str(entry.get("model", ""))
        self.devices.value = devices_text(entry)
        self.gpu.value = gib(entry.get("gpu_bytes") or 0)
        self.host.value = gib(entry.get("host_bytes") or 0)
        self.state.value = str(entry.get("state", ""))


class BoxView:
    def __init__(self) -> None:
        self.rows: list[BoxRow] = []  # in the listing's order; rows are reused, not rebuilt
        self.header = w.HBox(
            [w.HTML(f"<i>{h}</i>", layout=w.Layout(width=wd)) for h, wd in zip(HEADER, WIDTHS, strict=True)]
        )
        self.empty = w.Label(value="waiting for the box listing ...")
        self.rows_box = w.VBox([])
        self.widget = w.VBox([w.HTML("<b>On this box</b>"), self.empty, self.rows_box])

    def set_entries(self, entries: list[dict[str, Any]]) -> None:
        for row, entry in zip(self.rows, entries, strict=False):
            row.update(entry)
        self.rows[len(entries) :] = []
        self.rows += [BoxRow(e) for e in entries[len(self.rows) :]]
        children = (self.header, *(r.widget for r in self.rows)) if self.rows else ()
        if self.rows_box.children != children:
            self.rows_box.children = children
        self.empty.value = "" if self.rows else "no servers on this box"

    def set_error(self, message: str) -> None:
        self.empty.value = message
